package core

import (
	"bytes"
	"strconv"
	"testing"
)

// The decode cache holds at most decodeCacheSize records, none larger
// than maxDecodedRecordBytes: a hostile EHR's launches of records near
// maxRecordBytes must not make it hold 8,192 of them (half a GiB of
// bytes, more decoded).
func TestDecodeCacheBounds(t *testing.T) {
	t.Parallel()
	c := newDecodeCache(4)
	small := []byte(`{"v":1}`)
	large := bytes.Repeat([]byte{'a'}, maxDecodedRecordBytes+1)
	c.put("launch:large", large, launchRecord{Handle: "large"})
	if _, ok := c.get("launch:large", large); ok {
		t.Errorf("a record of %d bytes was kept decoded", len(large))
	}
	for i := range 10 {
		c.put("launch:"+strconv.Itoa(i), small, launchRecord{Handle: strconv.Itoa(i)})
	}
	if n := len(c.m); n != 4 {
		t.Errorf("the cache holds %d records, want its bound of 4", n)
	}
	if rec, ok := c.get("launch:9", small); !ok || rec.Handle != "9" {
		t.Errorf("the last record put is not found: %v %+v", ok, rec)
	}
}
