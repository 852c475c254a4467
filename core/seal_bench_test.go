package core_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// BenchmarkReadyCold is Ready by handle when the launch record changed
// since the engine last read it (a refresh, or another instance's write),
// so it is opened and decoded again: keys=1 with Config.StoreKeys,
// keys=none without. Two stored forms of one launch alternate to miss the
// engine's decode cache on every request. record-B is the stored size of
// the launch record.
func BenchmarkReadyCold(b *testing.B) {
	key := core.Secret(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	b.Run("keys=none", func(b *testing.B) { benchReadyCold(b) })
	b.Run("keys=1", func(b *testing.B) { benchReadyCold(b, key) })
}

func benchReadyCold(b *testing.B, keys ...core.Secret) {
	ctx := context.Background()
	h := newHarness(b, smarttest.Options{}, smarttest.Client{}, core.Config{StoreKeys: keys}, core.Issuer{})
	res := h.complete("b", &smarttest.LaunchContext{Patient: "pat-1", Encounter: "enc-1", FHIRUser: "Practitioner/prac-1"})
	key := "launch:" + res.Handle()
	first := h.store.stored()[key]
	// A refresh writes the second form: other tokens, the same launch.
	h.clock.Advance(2 * time.Hour)
	if _, err := h.eng.Ready(ctx, "b", res.Handle()); err != nil {
		b.Fatal(err)
	}
	h.clock.Advance(-2 * time.Hour)
	second := h.store.stored()[key]
	if bytes.Equal(first, second) {
		b.Fatal("the refresh did not rewrite the launch record")
	}
	forms := [2][]byte{first, second}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.store.put(key, forms[i%2])
		i++
		if _, err := h.eng.Ready(ctx, "b", res.Handle()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(first)), "record-B") // after the loop, which resets metrics
}
