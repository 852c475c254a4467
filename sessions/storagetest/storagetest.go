package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
)

// Run runs the contract's cases, in parallel subtests, against storages
// newStorage makes. newStorage is called once or twice per case and must
// return, each time, a storage whose keys no other call's storage sees
// (give each a prefix of its own); it may register cleanups on the t it
// gets. The cases of Take run when the storage is a core.Taker, and are
// skipped otherwise.
func Run(t *testing.T, newStorage func(t *testing.T) core.Storage) {
	runCases(t, newStorage, []contractCase[core.Storage]{
		{"SetGetDelete", one(testSetGetDelete)},
		{"NotFound", one(testNotFound)},
		{"EmptyValue", one(testEmptyValue)},
		{"ValuesAreCopies", one(testValuesAreCopies)},
		{"Expiry", one(testExpiry)},
		{"Isolation", testIsolation},
		{"LargeValue", one(testLargeValue)},
		{"ManyKeys", one(testManyKeys)},
		{"ConcurrentWriters", one(testConcurrentWriters)},
		{"CancelledContext", one(testCancelledContext)},
		{"TakeOnce", taker(testTakeOnce)},
		{"TakeConcurrent", taker(testTakeConcurrent)},
	})
}

// contractCase is one case of a contract for backends of type B.
type contractCase[B any] struct {
	name string
	run  func(t *testing.T, newBackend func(t *testing.T) B)
}

// runCases runs cases, each in a parallel subtest, against backends
// newBackend makes.
func runCases[B any](t *testing.T, newBackend func(t *testing.T) B, cases []contractCase[B]) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newBackend)
		})
	}
}

// one adapts a case that needs one backend.
func one[B any](run func(t *testing.T, b B)) func(*testing.T, func(*testing.T) B) {
	return func(t *testing.T, newBackend func(*testing.T) B) { run(t, newBackend(t)) }
}

// taker adapts a case of Take: it is skipped for a storage that is not a
// core.Taker.
func taker(run func(t *testing.T, s core.Storage, tk core.Taker)) func(*testing.T, func(*testing.T) core.Storage) {
	return func(t *testing.T, newStorage func(*testing.T) core.Storage) {
		s := newStorage(t)
		tk, ok := s.(core.Taker)
		if !ok {
			t.Skipf("%T is not a core.Taker", s)
		}
		run(t, s, tk)
	}
}

func mustSet(t *testing.T, s core.Storage, key string, value []byte, ttl time.Duration) {
	t.Helper()
	if err := s.Set(t.Context(), key, value, ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, s core.Storage, key string, want []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %d bytes %.40q, want %d bytes %.40q", key, len(got), got, len(want), want)
	}
}

func mustNotFind(t *testing.T, s core.Storage, key string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Get(%q) = %.40q, %v; want core.ErrNotFound", key, got, err)
	}
}

func testSetGetDelete(t *testing.T, s core.Storage) {
	ctx := t.Context()
	mustSet(t, s, "launch:a", []byte("first"), time.Minute)
	mustGet(t, s, "launch:a", []byte("first"))
	mustSet(t, s, "launch:a", []byte("second"), time.Minute)
	mustGet(t, s, "launch:a", []byte("second"))
	mustSet(t, s, "launch:b", []byte("other"), time.Minute)
	if err := s.Delete(ctx, "launch:a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	mustNotFind(t, s, "launch:a")
	mustGet(t, s, "launch:b", []byte("other"))
	if err := s.Delete(ctx, "launch:a"); err != nil {
		t.Fatalf("Delete of a deleted key: %v", err)
	}
	if err := s.Delete(ctx, "never-set"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
}

func testNotFound(t *testing.T, s core.Storage) {
	_, err := s.Get(t.Context(), "never-set")
	if !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Get = %v, want core.ErrNotFound", err)
	}
	if errors.Is(err, core.CodeStorageUnavailable) {
		t.Fatalf("a missing key is not a store failure: %v", err)
	}
}

func testEmptyValue(t *testing.T, s core.Storage) {
	mustSet(t, s, "empty", []byte{}, time.Minute)
	mustGet(t, s, "empty", []byte{})
	mustSet(t, s, "nil", nil, time.Minute)
	mustGet(t, s, "nil", []byte{})
}

func testValuesAreCopies(t *testing.T, s core.Storage) {
	v := []byte("original")
	mustSet(t, s, "k", v, time.Minute)
	copy(v, "XXXXXXXX")
	got, err := s.Get(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	copy(got, "YYYYYYYY")
	mustGet(t, s, "k", []byte("original"))
}

// A record runs out after its ttl, and not long before. A Taker finds
// nothing to take then either.
func testExpiry(t *testing.T, s core.Storage) {
	const ttl = time.Second
	start := time.Now()
	// "take" is written first, so it has run out by the time "short" has.
	mustSet(t, s, "take", []byte("v"), ttl)
	mustSet(t, s, "short", []byte("v"), ttl)
	mustSet(t, s, "long", []byte("v"), time.Hour)
	mustGet(t, s, "short", []byte("v"))
	// Redis expires with millisecond precision, PostgreSQL compares
	// microsecond timestamps, memstore nanoseconds. Allow for the clock
	// and the round trip.
	deadline := start.Add(ttl + 2*time.Second)
	for {
		_, err := s.Get(t.Context(), "short")
		if errors.Is(err, core.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("a record with ttl %v still there after %v", ttl, time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if gone := time.Since(start); gone < ttl-100*time.Millisecond {
		t.Fatalf("a record with ttl %v gone after %v", ttl, gone)
	}
	mustGet(t, s, "long", []byte("v"))
	if tk, ok := s.(core.Taker); ok {
		if b, err := tk.Take(t.Context(), "take"); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("Take of a record that ran out = %.40q, %v; want core.ErrNotFound", b, err)
		}
	}
}

// Two storages made for one case share no key.
func testIsolation(t *testing.T, newStorage func(t *testing.T) core.Storage) {
	a, b := newStorage(t), newStorage(t)
	mustSet(t, a, "k", []byte("a"), time.Minute)
	mustNotFind(t, b, "k")
	mustSet(t, b, "k", []byte("b"), time.Minute)
	mustGet(t, a, "k", []byte("a"))
	if err := b.Delete(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
	mustGet(t, a, "k", []byte("a"))
	if tk, ok := b.(core.Taker); ok {
		if _, err := tk.Take(t.Context(), "k"); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("Take from the other storage = %v; want core.ErrNotFound", err)
		}
		mustGet(t, a, "k", []byte("a"))
	}
}

func testLargeValue(t *testing.T, s core.Storage) {
	v := make([]byte, 64<<10)
	rand.Read(v)
	mustSet(t, s, "large", v, time.Minute)
	mustGet(t, s, "large", v)
}

func testManyKeys(t *testing.T, s core.Storage) {
	const n = 1000
	forEach(t, n, 8, func(i int) error {
		return s.Set(t.Context(), fmt.Sprintf("many:%d", i), fmt.Appendf(nil, "value %d", i), time.Minute)
	})
	forEach(t, n, 8, func(i int) error {
		got, err := s.Get(t.Context(), fmt.Sprintf("many:%d", i))
		if err != nil {
			return err
		}
		if want := fmt.Sprintf("value %d", i); string(got) != want {
			return fmt.Errorf("many:%d = %q, want %q", i, got, want)
		}
		return nil
	})
}

func testConcurrentWriters(t *testing.T, s core.Storage) {
	const writers, rounds = 16, 20
	forEach(t, writers, writers, func(w int) error {
		for r := range rounds {
			if err := s.Set(t.Context(), fmt.Sprintf("writer:%d", w), fmt.Appendf(nil, "%d/%d", w, r), time.Minute); err != nil {
				return err
			}
		}
		return nil
	})
	for w := range writers {
		mustGet(t, s, fmt.Sprintf("writer:%d", w), fmt.Appendf(nil, "%d/%d", w, rounds-1))
	}
}

func testCancelledContext(t *testing.T, s core.Storage) {
	mustSet(t, s, "k", []byte("kept"), time.Minute)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v; want an error wrapping context.Canceled", op, err)
		}
		checkFailure(t, op, err)
	}
	_, err := s.Get(ctx, "k")
	check("Get", err)
	check("Set", s.Set(ctx, "k", []byte("changed"), time.Minute))
	check("Delete", s.Delete(ctx, "k"))
	if tk, ok := s.(core.Taker); ok {
		_, err := tk.Take(ctx, "k")
		check("Take", err)
	}
	mustGet(t, s, "k", []byte("kept"))
}

// checkFailure fails the test unless err is a failure the engine answers
// with 503: not nil, not core.ErrNotFound, and a *core.Error only with
// Code storage_unavailable.
func checkFailure(t *testing.T, op string, err error) {
	t.Helper()
	if err == nil || errors.Is(err, core.ErrNotFound) {
		t.Errorf("%s = %v; want a failure, not a success or core.ErrNotFound", op, err)
		return
	}
	var e *core.Error
	if errors.As(err, &e) && e.Code != core.CodeStorageUnavailable {
		t.Errorf("%s: a *core.Error with Code %s; want %s", op, e.Code, core.CodeStorageUnavailable)
	}
}

func testTakeOnce(t *testing.T, s core.Storage, tk core.Taker) {
	ctx := t.Context()
	if b, err := tk.Take(ctx, "never-set"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Take of a missing key = %.40q, %v; want core.ErrNotFound", b, err)
	}
	mustSet(t, s, "pending:a", []byte("launch"), time.Minute)
	mustSet(t, s, "pending:b", []byte("other"), time.Minute)
	b, err := tk.Take(ctx, "pending:a")
	if err != nil || string(b) != "launch" {
		t.Fatalf("Take = %.40q, %v; want the value", b, err)
	}
	if b, err := tk.Take(ctx, "pending:a"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("second Take = %.40q, %v; want core.ErrNotFound", b, err)
	}
	mustNotFind(t, s, "pending:a")
	mustGet(t, s, "pending:b", []byte("other"))
	mustSet(t, s, "empty", nil, time.Minute)
	if b, err := tk.Take(ctx, "empty"); err != nil || len(b) != 0 {
		t.Fatalf("Take of an empty value = %.40q, %v; want it, empty", b, err)
	}
}

// Of many concurrent Takes of one key, exactly one gets the value; the
// others get core.ErrNotFound.
func testTakeConcurrent(t *testing.T, s core.Storage, tk core.Taker) {
	const keys, takers = 5, 20
	for k := range keys {
		mustSet(t, s, fmt.Sprintf("pending:%d", k), fmt.Appendf(nil, "launch %d", k), time.Minute)
	}
	var (
		mu   sync.Mutex
		won  = make(map[int]int)
		errs []error
		wg   sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range keys * takers {
		k := i % keys
		wg.Go(func() {
			<-start
			b, err := tk.Take(t.Context(), fmt.Sprintf("pending:%d", k))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, core.ErrNotFound):
			case err != nil:
				errs = append(errs, err)
			case string(b) != fmt.Sprintf("launch %d", k):
				errs = append(errs, fmt.Errorf("Take(pending:%d) = %.40q", k, b))
			default:
				won[k]++
			}
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	for k := range keys {
		if won[k] != 1 {
			t.Errorf("%d concurrent Takes of pending:%d: %d got the value; want exactly 1", takers, k, won[k])
		}
		mustNotFind(t, s, fmt.Sprintf("pending:%d", k))
	}
}

// forEach runs fn(0) … fn(n-1) on workers goroutines and fails the test with
// the first error.
func forEach(t *testing.T, n, workers int, fn func(i int) error) {
	t.Helper()
	next := make(chan int)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d failed; first: %v", len(errs), n, errs[0])
	}
}
