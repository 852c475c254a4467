package storagetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
)

// RunLocker runs the contract of a core.Locker, in parallel subtests,
// against lockers newLocker makes. newLocker is called once per case; the
// names its lockers see must be the case's alone (give each a unique
// prefix, with [PrefixedLocker]).
func RunLocker(t *testing.T, newLocker func(t *testing.T) core.Locker) {
	runCases(t, newLocker, []contractCase[core.Locker]{
		{"TakeAndRelease", one(testTakeAndRelease)},
		{"NamesAreApart", one(testNamesAreApart)},
		{"Expiry", one(testLockExpiry)},
		{"OnlyOwnerReleases", one(testOnlyOwnerReleases)},
		{"ReleaseTwice", one(testReleaseTwice)},
		{"OneHolderAtATime", one(testOneHolderAtATime)},
		{"CancelledContext", one(testLockCancelledContext)},
	})
}

// MustLock takes the lock or fails the test.
func MustLock(t *testing.T, l core.Locker, key string, ttl time.Duration) func(context.Context) error {
	t.Helper()
	unlock, ok, err := l.TryLock(t.Context(), key, ttl)
	if err != nil || !ok {
		t.Fatalf("TryLock(%q) = %v, %v; want it taken", key, ok, err)
	}
	return unlock
}

// mustNotLock fails the test if the lock can be taken.
func mustNotLock(t *testing.T, l core.Locker, key string) {
	t.Helper()
	unlock, ok, err := l.TryLock(t.Context(), key, time.Minute)
	if err != nil || ok {
		if ok {
			unlock(t.Context())
		}
		t.Fatalf("TryLock(%q) = %v, %v; want it held by another owner", key, ok, err)
	}
}

// MustUnlock releases the lock or fails the test.
func MustUnlock(t *testing.T, unlock func(context.Context) error) {
	t.Helper()
	if err := unlock(t.Context()); err != nil {
		t.Fatalf("unlock: %v", err)
	}
}

func testTakeAndRelease(t *testing.T, l core.Locker) {
	unlock := MustLock(t, l, "lock:a", time.Minute)
	mustNotLock(t, l, "lock:a")
	MustUnlock(t, unlock)
	MustUnlock(t, MustLock(t, l, "lock:a", time.Minute))
}

func testNamesAreApart(t *testing.T, l core.Locker) {
	a := MustLock(t, l, "lock:a", time.Minute)
	b := MustLock(t, l, "lock:b", time.Minute)
	MustUnlock(t, a)
	mustNotLock(t, l, "lock:b")
	MustUnlock(t, b)
}

// A lock whose holder never releases it runs out after its ttl, and not
// before.
func testLockExpiry(t *testing.T, l core.Locker) {
	const ttl = 300 * time.Millisecond
	start := time.Now()
	MustLock(t, l, "lock:a", ttl) // never released: its holder is gone
	for {
		unlock, ok, err := l.TryLock(t.Context(), "lock:a", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if d := time.Since(start); d < ttl-50*time.Millisecond {
				t.Fatalf("the lock was free after %v, before its ttl %v", d, ttl)
			}
			MustUnlock(t, unlock)
			return
		}
		if time.Since(start) > ttl+5*time.Second {
			t.Fatalf("the lock is still held %v after its ttl ran out", time.Since(start)-ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A holder that outlived its ttl releases nothing: the lock now belongs
// to another owner.
func testOnlyOwnerReleases(t *testing.T, l core.Locker) {
	late := MustLock(t, l, "lock:a", 100*time.Millisecond)
	var next func(context.Context) error
	for deadline := time.Now().Add(5 * time.Second); next == nil; {
		unlock, ok, err := l.TryLock(t.Context(), "lock:a", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			next = unlock
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lock never ran out")
		}
		time.Sleep(20 * time.Millisecond)
	}
	MustUnlock(t, late) // too late: not the owner any more
	mustNotLock(t, l, "lock:a")
	MustUnlock(t, next)
	MustUnlock(t, MustLock(t, l, "lock:a", time.Minute))
}

func testReleaseTwice(t *testing.T, l core.Locker) {
	unlock := MustLock(t, l, "lock:a", time.Minute)
	MustUnlock(t, unlock)
	MustUnlock(t, unlock)
	MustUnlock(t, MustLock(t, l, "lock:a", time.Minute))
}

// Many goroutines contending for one lock: never two holders at once, and
// every one gets its turn.
func testOneHolderAtATime(t *testing.T, l core.Locker) {
	const workers, turns = 8, 5
	var holders, most, taken atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for n := 0; n < turns; {
				unlock, ok, err := l.TryLock(t.Context(), "lock:a", 10*time.Second)
				if err != nil {
					errs <- err
					return
				}
				if !ok {
					time.Sleep(time.Millisecond)
					continue
				}
				h := holders.Add(1)
				for m := most.Load(); h > m && !most.CompareAndSwap(m, h); m = most.Load() {
				}
				time.Sleep(time.Millisecond)
				holders.Add(-1)
				if err := unlock(t.Context()); err != nil {
					errs <- err
					return
				}
				taken.Add(1)
				n++
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if most.Load() != 1 || taken.Load() != workers*turns {
		t.Fatalf("at most %d holders at once, %d turns; want 1 and %d", most.Load(), taken.Load(), workers*turns)
	}
}

func testLockCancelledContext(t *testing.T, l core.Locker) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	unlock, ok, err := l.TryLock(ctx, "lock:a", time.Minute)
	if err == nil || ok {
		if ok {
			unlock(t.Context())
		}
		t.Fatalf("TryLock with a cancelled context = %v, %v; want an error", ok, err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Logf("the error does not wrap context.Canceled: %v", err)
	}
	MustUnlock(t, MustLock(t, l, "lock:a", time.Minute))
}

// PrefixedLocker returns a Locker that puts prefix in front of every name
// before passing it to l, so that cases sharing one server never meet.
func PrefixedLocker(l core.Locker, prefix string) core.Locker { return prefixed{l, prefix} }

type prefixed struct {
	l      core.Locker
	prefix string
}

func (p prefixed) TryLock(ctx context.Context, key string, ttl time.Duration) (func(context.Context) error, bool, error) {
	return p.l.TryLock(ctx, p.prefix+key, ttl)
}

// LockerOutage checks that l fails, with an error and not a lock, between
// cut and restore (which take its server away and bring it back), that a
// lock taken before the cut cannot be released during it, and that l
// works again after restore.
func LockerOutage(t *testing.T, l core.Locker, cut, restore func()) {
	held := MustLock(t, l, "lock:held", time.Minute)
	cut()
	if _, ok, err := l.TryLock(t.Context(), "lock:a", time.Minute); err == nil || ok {
		t.Fatalf("TryLock with the server cut = %v, %v; want an error", ok, err)
	}
	if err := held(t.Context()); err == nil {
		t.Fatal("unlock with the server cut succeeded")
	}
	restore()
	var last error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		unlock, ok, err := l.TryLock(t.Context(), "lock:a", time.Minute)
		last = err
		if err == nil && ok {
			MustUnlock(t, unlock)
			MustUnlock(t, held)
			return
		}
	}
	t.Fatalf("the locker did not recover after the server came back: %v", last)
}
