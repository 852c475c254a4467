package core

import (
	"bytes"
	"testing"
)

// BenchmarkSeal measures sealing and opening one launch record of the
// sandbox's size (652 bytes) with AES-256-GCM: the whole cost of
// Config.StoreKeys on a write, and on a read that misses the decode cache.
func BenchmarkSeal(b *testing.B) {
	r, err := newKeyRing([]Secret{repeatedKey(7)})
	if err != nil {
		b.Fatal(err)
	}
	const key = "launch:0123456789abcdef0123456789abcdef0123456:0123456789abcdef0123456789abcdef0123456"
	plain := bytes.Repeat([]byte("x"), 652)
	sealed := r.seal(key, plain)
	b.Run("op=seal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.seal(key, plain)
		}
	})
	b.Run("op=open", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.open(key, sealed); err != nil {
				b.Fatal(err)
			}
		}
	})
}
