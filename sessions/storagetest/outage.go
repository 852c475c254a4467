package storagetest

import (
	"testing"
	"time"

	"github.com/fhirware/smart/core"
)

// Outage checks s while its server is away: between cut and restore
// (which take the server away and bring it back, a TCP proxy in front of
// it does both) every Get, Set, Delete and, for a core.Taker, Take fails
// with an error that is not core.ErrNotFound (a *core.Error must have Code
// storage_unavailable), so the engine answers 503 and never mistakes an
// outage for a missing launch. After restore, s must serve again within
// ten seconds, on its own (a pool drops the connections that died), with
// the record it kept from before the cut.
//
// s should be used by this test alone; Outage takes a few seconds at most.
func Outage(t *testing.T, s core.Storage, cut, restore func()) {
	ctx := t.Context()
	mustSet(t, s, "before", []byte("kept"), time.Minute)
	mustGet(t, s, "before", []byte("kept"))
	tk, isTaker := s.(core.Taker)

	cut()
	for range 3 {
		_, err := s.Get(ctx, "before")
		checkFailure(t, "Get with the server away", err)
		checkFailure(t, "Set with the server away", s.Set(ctx, "during", []byte("v"), time.Minute))
		checkFailure(t, "Delete with the server away", s.Delete(ctx, "before"))
		if isTaker {
			_, err := tk.Take(ctx, "before")
			checkFailure(t, "Take with the server away", err)
		}
	}

	restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Set(ctx, "after", []byte("v"), time.Minute)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no service 10s after the server came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mustGet(t, s, "after", []byte("v"))
	for range 20 {
		mustSet(t, s, "again", []byte("v"), time.Minute)
		mustGet(t, s, "again", []byte("v"))
	}
	if isTaker {
		b, err := tk.Take(ctx, "before")
		if err != nil || string(b) != "kept" {
			t.Fatalf("Take after the server came back = %.40q, %v; want the record kept from before the cut", b, err)
		}
	} else {
		mustGet(t, s, "before", []byte("kept"))
	}
}
