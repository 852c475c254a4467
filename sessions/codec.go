package sessions

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/alexedwards/scs/v2"
)

// Codec is the scs.Codec of the session managers [New] creates: a session
// whose values are all strings, as the values the Browser keeps are (the
// SMART session id, the latest launch's handle), is encoded as the
// deadline and the length-prefixed keys and values, which decodes with
// one map and one string per session instead of a gob decoder compiled
// for every request. A session holding a value of any other type, such
// as an app's int or struct, is encoded with scs.GobCodec, as scs would
// encode it, so those values need gob.Register as they would without
// Codec. Decode reads both forms, so sessions saved with scs's default
// codec before are still found.
//
// A manager you pass to New keeps its own Codec; set
//
//	sm.Codec = sessions.Codec{}
//
// to give it this one. Every app instance that shares the store must then
// read this form: roll it out to all of them before any writes it.
type Codec struct{}

// codecMagic starts every session Codec encodes in its own form. A gob
// stream never starts with a zero byte (its first byte is the length of a
// non-empty message), so the two forms cannot be mistaken for each other.
const codecMagic = "\x00smart1"

// zeroDeadline stands for the zero time.Time, which has no UnixNano.
const zeroDeadline = math.MinInt64

var errCodecCorrupt = errors.New("sessions: the stored session data is corrupt")

// Encode encodes deadline and values: in Codec's own form when every value
// is a string, else with scs.GobCodec.
func (Codec) Encode(deadline time.Time, values map[string]any) ([]byte, error) {
	n := len(codecMagic) + 8 + binary.MaxVarintLen64
	for k, v := range values {
		s, ok := v.(string)
		if !ok {
			return scs.GobCodec{}.Encode(deadline, values)
		}
		n += 2*binary.MaxVarintLen64 + len(k) + len(s)
	}
	b := make([]byte, 0, n)
	b = append(b, codecMagic...)
	d := int64(zeroDeadline)
	if !deadline.IsZero() {
		d = deadline.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(d))
	b = binary.AppendUvarint(b, uint64(len(values)))
	for k, v := range values {
		s := v.(string)
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b, nil
}

// Decode decodes a session that Codec or scs.GobCodec encoded.
func (Codec) Decode(b []byte) (time.Time, map[string]any, error) {
	if len(b) < len(codecMagic) || string(b[:len(codecMagic)]) != codecMagic {
		return scs.GobCodec{}.Decode(b)
	}
	if len(b) < len(codecMagic)+8 {
		return time.Time{}, nil, errCodecCorrupt
	}
	var deadline time.Time
	if d := int64(binary.BigEndian.Uint64(b[len(codecMagic):])); d != zeroDeadline {
		deadline = time.Unix(0, d)
	}
	// One string for every key and value: each is a slice of it.
	rest := string(b[len(codecMagic)+8:])
	count, rest, ok := uvarint(rest)
	if !ok || count > uint64(len(rest)) {
		return time.Time{}, nil, errCodecCorrupt
	}
	values := make(map[string]any, count)
	for range count {
		var k, v string
		if k, rest, ok = field(rest); !ok {
			return time.Time{}, nil, errCodecCorrupt
		}
		if v, rest, ok = field(rest); !ok {
			return time.Time{}, nil, errCodecCorrupt
		}
		values[k] = v
	}
	if rest != "" {
		return time.Time{}, nil, errCodecCorrupt
	}
	return deadline, values, nil
}

// uvarint reads a uvarint from the start of s.
func uvarint(s string) (uint64, string, bool) {
	var x uint64
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		c := s[i]
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return x, s[i+1:], true
		}
	}
	return 0, "", false
}

// field reads a length-prefixed string from the start of s.
func field(s string) (string, string, bool) {
	n, rest, ok := uvarint(s)
	if !ok || n > uint64(len(rest)) {
		return "", "", false
	}
	return rest[:n], rest[n:], true
}
