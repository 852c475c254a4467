package core

import (
	"bytes"
	"sync"
)

// decodeCache keeps the decoded form of recently read launch records, keyed
// by storage key and checked against the stored bytes, so that a record is
// decoded again only when it changed. It holds at most max entries; when
// full, an arbitrary entry makes room (Go's map order), which is enough to
// bound memory without bookkeeping on the hot path.
type decodeCache struct {
	mu  sync.Mutex
	max int
	m   map[string]decoded
}

type decoded struct {
	raw []byte
	rec launchRecord
}

func newDecodeCache(max int) *decodeCache {
	return &decodeCache{max: max, m: make(map[string]decoded)}
}

// get returns the decoded record for key if raw is what was decoded.
func (c *decodeCache) get(key string, raw []byte) (launchRecord, bool) {
	c.mu.Lock()
	d, ok := c.m[key]
	c.mu.Unlock()
	if !ok || !bytes.Equal(d.raw, raw) {
		return launchRecord{}, false
	}
	return d.rec, true
}

// maxDecodedRecordBytes bounds the records the cache keeps: real launch
// records are well under 8 KiB, and thousands of records near
// maxRecordBytes (a hostile EHR's launches) would hold a GiB. A larger
// record is decoded at each read.
const maxDecodedRecordBytes = 16 << 10

func (c *decodeCache) put(key string, raw []byte, rec launchRecord) {
	if len(raw) > maxDecodedRecordBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[key] = decoded{raw: bytes.Clone(raw), rec: rec} // the Storage may reuse its buffer
}
