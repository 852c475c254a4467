package core_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// A callback replayed while the first is still in flight (a double click,
// a browser retry, an attacker racing the victim) finds no pending launch:
// the pending launch is taken in one step, so exactly one code exchange is
// made and the EHR never sees the code twice (which would revoke the grant
// of the launch that won, RFC 6749 section 4.1.2). The store is slowed down
// between a read and its answer so that, without an atomic take, every
// callback would read the pending launch before any deletes it.
func TestCallbackReplayedInFlightExchangesOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	replayInFlight(t, h, h.eng)
}

// replayInFlight launches in browser "b" and runs six callbacks of it at
// once, spread over engines (app instances sharing h's store), with the
// store slowed down after each read of a pending launch. Exactly one
// callback must finish the launch, with one code exchange; the others
// fail with invalid_state.
func replayInFlight(t *testing.T, h *harness, engines ...*core.Engine) {
	t.Helper()
	cb := h.launch("b", &smarttest.LaunchContext{Patient: "pat-1"})
	h.store.mu.Lock()
	h.store.afterRead = func(key string) {
		if strings.HasPrefix(key, "pending:") {
			time.Sleep(50 * time.Millisecond)
		}
	}
	h.store.mu.Unlock()
	const n = 6
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  int
		errs []error
	)
	for i := range n {
		eng := engines[i%len(engines)]
		wg.Go(func() {
			_, err := eng.Callback(context.Background(), "b", cb)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won++
			} else {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d of %d concurrent callbacks with one state on %d instances finished the launch, want 1", won, n, len(engines))
	}
	for _, err := range errs {
		if !errors.Is(err, core.CodeInvalidState) {
			t.Errorf("a replayed callback failed with %v, want invalid_state", err)
		}
	}
	if got := h.ehr.Count(smarttest.EndpointTokenCode); got != 1 {
		t.Errorf("%d code exchanges, want 1", got)
	}
}

// A browser that starts launches in a loop keeps at most MaxPendingLaunches
// of them: the oldest are deleted, and their callbacks find nothing.
func TestPendingLaunchesAreBoundedPerBrowser(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{MaxPendingLaunches: 3}, core.Issuer{})
	var cbs []core.CallbackRequest
	for range 5 {
		cbs = append(cbs, h.launch("loop", &smarttest.LaunchContext{Patient: "pat-1"}))
	}
	h.store.mu.Lock()
	pending := 0
	for k := range h.store.data {
		if strings.HasPrefix(k, "pending:") {
			pending++
		}
	}
	h.store.mu.Unlock()
	if pending != 3 {
		t.Errorf("%d pending launches stored, want 3", pending)
	}
	for i, cb := range cbs {
		_, err := h.eng.Callback(context.Background(), "loop", cb)
		switch {
		case i < 2 && !errors.Is(err, core.CodeInvalidState):
			t.Errorf("callback of evicted launch %d: %v, want invalid_state", i, err)
		case i >= 2 && err != nil:
			t.Errorf("callback of launch %d: %v", i, err)
		}
	}
}
