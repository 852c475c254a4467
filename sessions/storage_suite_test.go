package sessions_test

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
	"github.com/fhirware/smart/sessions"
)

// runStorageSuite checks that the storages newStorage makes keep
// core.Storage's contract. newStorage is called once per case and must
// return a storage whose keys no other case or test sees.
func runStorageSuite(t *testing.T, newStorage func(t *testing.T) core.Storage) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s core.Storage)
	}{
		{"SetGetDelete", testSetGetDelete},
		{"NotFound", testNotFound},
		{"EmptyValue", testEmptyValue},
		{"ValuesAreCopies", testValuesAreCopies},
		{"Expiry", testExpiry},
		{"ShortTTLRaised", testShortTTLRaised},
		{"NonPositiveTTLDeletes", testNonPositiveTTLDeletes},
		{"LargeValue", testLargeValue},
		{"ManyKeys", testManyKeys},
		{"ConcurrentWriters", testConcurrentWriters},
		{"CancelledContext", testCancelledContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStorage(t))
		})
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
		t.Fatalf("Get(%q) = %q, %v; want core.ErrNotFound", key, got, err)
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

func testExpiry(t *testing.T, s core.Storage) {
	ttl := sessions.MinTTL
	start := time.Now()
	mustSet(t, s, "short", []byte("v"), ttl)
	mustSet(t, s, "long", []byte("v"), time.Hour)
	mustGet(t, s, "short", []byte("v"))
	// Redis expires with millisecond precision, PostgreSQL compares
	// microsecond timestamps, memstore nanoseconds; no store rounds to
	// seconds. Allow for the clock and the round trip.
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
}

func testShortTTLRaised(t *testing.T, s core.Storage) {
	mustSet(t, s, "k", []byte("v"), time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	mustGet(t, s, "k", []byte("v"))
}

func testNonPositiveTTLDeletes(t *testing.T, s core.Storage) {
	mustSet(t, s, "k", []byte("v"), time.Minute)
	mustSet(t, s, "k", []byte("v"), 0)
	mustNotFind(t, s, "k")
	mustSet(t, s, "k", []byte("v"), -time.Second)
	mustNotFind(t, s, "k")
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
		if !errors.Is(err, core.CodeStorageUnavailable) || !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v; want storage_unavailable wrapping context.Canceled", op, err)
		}
		var e *core.Error
		if errors.As(err, &e) && e.Op != "storage" {
			t.Errorf("%s: Op = %q, want storage", op, e.Op)
		}
	}
	_, err := s.Get(ctx, "k")
	check("Get", err)
	check("Set", s.Set(ctx, "k", []byte("changed"), time.Minute))
	check("Delete", s.Delete(ctx, "k"))
	mustGet(t, s, "k", []byte("kept"))
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
