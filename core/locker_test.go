package core_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// memLocker is a core.Locker in the process: the engines of a test share
// it as app instances share one over Redis or PostgreSQL.
type memLocker struct {
	mu    sync.Mutex
	held  map[string]memLock
	next  int
	names sync.Map // the prefixes of the keys asked for (string → bool)
}

type memLock struct {
	owner   int
	expires time.Time
}

func newMemLocker() *memLocker { return &memLocker{held: map[string]memLock{}} }

func (l *memLocker) TryLock(_ context.Context, key string, ttl time.Duration) (func(context.Context) error, bool, error) {
	prefix, _, _ := strings.Cut(strings.TrimPrefix(key, "lock:"), ":")
	l.names.Store(prefix, true)
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, ok := l.held[key]; ok && time.Now().Before(h.expires) {
		return nil, false, nil
	}
	l.next++
	owner := l.next
	l.held[key] = memLock{owner: owner, expires: time.Now().Add(ttl)}
	return func(context.Context) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.held[key].owner == owner {
			delete(l.held, key)
		}
		return nil
	}, true, nil
}

// used reports whether a lock whose key (after "lock:") begins with
// prefix was asked for.
func (l *memLocker) used(prefix string) bool {
	_, ok := l.names.Load(prefix)
	return ok
}

// twoInstances is a harness with Config.Locker set and a second engine,
// as another app instance: the same configuration, Storage and Locker,
// and locks of its own process.
func twoInstances(t *testing.T, opts smarttest.Options, cfg core.Config) (*harness, *core.Engine, *memLocker) {
	t.Helper()
	l := newMemLocker()
	cfg.Locker = l
	h := newHarness(t, opts, smarttest.Client{}, cfg, core.Issuer{})
	other, err := core.New(h.eng.Config())
	if err != nil {
		t.Fatal(err)
	}
	return h, other, l
}

// A callback replayed on two instances at once makes one code exchange:
// the pending launch is taken under Config.Locker (the harness's Storage
// is no Taker), not under each process's own lock alone. The store is
// slowed down after each read of a pending launch, so that without the
// shared lock both instances would read it before either deleted it.
func TestLockerTakesThePendingLaunchOnceAcrossInstances(t *testing.T) {
	t.Parallel()
	h, other, l := twoInstances(t, smarttest.Options{}, core.Config{})
	replayInFlight(t, h, h.eng, other)
	if !l.used("pending") || !l.used("launches") {
		t.Error("the engine did not take the Locker's lock on the pending launch and on the browser's launches")
	}
}

// Requests on two instances that find one launch's token expired refresh
// it once between them, under Config.Locker: the EHR rotates the refresh
// token at each refresh and revokes the grant if an old one comes back.
func TestLockerRefreshesOnceAcrossInstances(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h, other, l := twoInstances(t, smarttest.Options{}, core.Config{})
	handle := h.complete("b", &pat1).Handle()
	h.clock.Advance(2 * time.Hour)
	h.ehr.SetFaults(smarttest.Faults{StrictRotation: true, Latency: 20 * time.Millisecond})
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		eng := h.eng
		if i%2 == 1 {
			eng = other
		}
		wg.Go(func() {
			<-start
			rc, err := eng.Ready(ctx, "b", handle)
			if err != nil {
				errs <- fmt.Errorf("request %d: %w", i, err)
				return
			}
			var p struct{ ID string }
			if err := readPatient(ctx, rc, &p); err != nil {
				errs <- fmt.Errorf("request %d: %w", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := h.ehr.Count(smarttest.EndpointTokenRefresh); got != 1 {
		t.Errorf("%d requests on two instances made %d refreshes, want 1", n, got)
	}
	if !l.used("refresh") {
		t.Error("the refresh did not take the Locker's lock")
	}
}
