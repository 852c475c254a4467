package sessions_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/sessions"
)

func TestStorageMemstore(t *testing.T) {
	t.Parallel()
	runStorageSuite(t, func(t *testing.T) core.Storage {
		return sessions.NewStorage(memstore.NewWithCleanupInterval(0))
	})
}

func TestStorageMemstoreThroughManager(t *testing.T) {
	t.Parallel()
	runStorageSuite(t, func(t *testing.T) core.Storage {
		sm := scs.New()
		sm.Store = memstore.NewWithCleanupInterval(0)
		return sessions.NewStorageFromManager(sm)
	})
}

func TestStorageRedisstore(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	runStorageSuite(t, func(t *testing.T) core.Storage {
		store, _ := redigoStore(t, addr)
		return redisStorage(t, addr, store)
	})
}

func TestStorageGoredisstore(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	runStorageSuite(t, func(t *testing.T) core.Storage {
		store, _ := goredisStore(t, addr)
		return redisStorage(t, addr, store)
	})
}

func TestStoragePgxstore(t *testing.T) {
	t.Parallel()
	url := postgresURL(t)
	pool := pgPool(t, url)
	runStorageSuite(t, func(t *testing.T) core.Storage {
		return postgresStorage(t, url, pgStore(pool))
	})
}

// redisStorage is a Storage over store under a prefix of the test's own,
// whose keys are deleted when the test ends.
func redisStorage(t *testing.T, addr string, store scs.Store) *sessions.Storage {
	prefix := uniquePrefix(t)
	deleteRedisKeys(t, addr, prefix)
	return sessions.NewStorage(store).WithPrefix(prefix)
}

// postgresStorage is a Storage over store under a prefix of the test's own,
// whose rows are deleted when the test ends.
func postgresStorage(t *testing.T, url string, store scs.Store) *sessions.Storage {
	prefix := uniquePrefix(t)
	deletePostgresRows(t, url, prefix)
	return sessions.NewStorage(store).WithPrefix(prefix)
}

// The server going away: every operation fails with storage_unavailable,
// and the same pool or client serves again once the server is back.

func TestStorageRedisstoreOutage(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	proxy := newTCPProxy(t, addr)
	store, _ := redigoStore(t, proxy.Addr())
	testOutage(t, redisStorage(t, addr, store), proxy)
}

func TestStorageGoredisstoreOutage(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	proxy := newTCPProxy(t, addr)
	store, _ := goredisStore(t, proxy.Addr())
	testOutage(t, redisStorage(t, addr, store), proxy)
}

func TestStoragePgxstoreOutage(t *testing.T) {
	t.Parallel()
	url := postgresURL(t)
	pgPool(t, url) // the table
	pool, proxy := proxiedPgPool(t, url)
	testOutage(t, postgresStorage(t, url, pgStore(pool)), proxy)
}

func testOutage(t *testing.T, s core.Storage, proxy *tcpProxy) {
	ctx := t.Context()
	mustSet(t, s, "before", []byte("kept"), time.Minute)
	mustGet(t, s, "before", []byte("kept"))

	proxy.Cut()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, core.CodeStorageUnavailable) {
			t.Errorf("%s with the server gone = %v; want storage_unavailable", op, err)
		}
		var e *core.Error
		if !errors.As(err, &e) || e.Op != "storage" || e.Err == nil {
			t.Errorf("%s: %#v; want a *core.Error, Op storage, with the cause", op, e)
		}
	}
	for range 3 {
		_, err := s.Get(ctx, "before")
		check("Get", err)
		check("Set", s.Set(ctx, "during", []byte("v"), time.Minute))
		check("Delete", s.Delete(ctx, "before"))
	}

	proxy.Restore()
	// The pool may hold connections that died with the cut; it must drop
	// them and dial again on its own.
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
	mustGet(t, s, "before", []byte("kept"))
	mustGet(t, s, "after", []byte("v"))
	for range 20 {
		mustSet(t, s, "again", []byte("v"), time.Minute)
		mustGet(t, s, "again", []byte("v"))
	}
}

// A hanging Redis does not hold a request past its context: goredisstore
// is a CtxStore, and go-redis puts the deadline on the connection.
func TestStorageGoredisstoreDeadline(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	proxy := newTCPProxy(t, addr)
	store, _ := goredisStore(t, proxy.Addr())
	s := redisStorage(t, addr, store)
	mustSet(t, s, "k", []byte("v"), time.Minute)

	proxy.Stall()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Get(ctx, "k")
	if !errors.Is(err, core.CodeStorageUnavailable) {
		t.Fatalf("Get from a hanging server = %v; want storage_unavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Get from a hanging server took %v with a 200ms deadline", d)
	}
	proxy.Restore()
}

// The Storage made from a manager follows the manager's store when the app
// swaps it after the Storage was made.
func TestStorageFromManagerFollowsSwap(t *testing.T) {
	t.Parallel()
	sm := scs.New()
	before := memstore.NewWithCleanupInterval(0)
	sm.Store = before
	s := sessions.NewStorageFromManager(sm)

	after := memstore.NewWithCleanupInterval(0)
	sm.Store = after
	mustSet(t, s, "k", []byte("v"), time.Minute)

	if _, found, _ := before.Find("smart:k"); found {
		t.Error("the record went to the store the manager had before the swap")
	}
	if b, found, _ := after.Find("smart:k"); !found || string(b) != "v" {
		t.Errorf("after the swap, store has %q, %v; want the record under smart:k", b, found)
	}
}

func TestStoragePrefix(t *testing.T) {
	t.Parallel()
	store := memstore.NewWithCleanupInterval(0)
	a := sessions.NewStorage(store)
	b := a.WithPrefix("other:")
	if a.Prefix() != sessions.DefaultKeyPrefix || b.Prefix() != "other:" {
		t.Fatalf("prefixes %q, %q", a.Prefix(), b.Prefix())
	}
	mustSet(t, a, "k", []byte("a"), time.Minute)
	mustSet(t, b, "k", []byte("b"), time.Minute)
	mustGet(t, a, "k", []byte("a"))
	mustGet(t, b, "k", []byte("b"))
	if _, found, _ := store.Find("other:k"); !found {
		t.Error("no other:k in the store")
	}
}

// A store error keeps its cause for errors.Is and says nothing of the key.
func TestStorageErrorMapping(t *testing.T) {
	t.Parallel()
	cause := errors.New("connection refused")
	s := sessions.NewStorage(failingStore{cause})
	_, err := s.Get(t.Context(), "state-secret")
	for _, err := range []error{err, s.Set(t.Context(), "state-secret", nil, time.Minute), s.Delete(t.Context(), "state-secret")} {
		var e *core.Error
		if !errors.As(err, &e) || e.Code != core.CodeStorageUnavailable || e.Op != "storage" {
			t.Fatalf("err = %#v; want *core.Error storage_unavailable, Op storage", err)
		}
		if !errors.Is(err, cause) || errors.Is(err, core.ErrNotFound) {
			t.Errorf("err = %v; want the cause, and not ErrNotFound", err)
		}
		if core.HTTPStatus(err) != 503 {
			t.Errorf("HTTPStatus = %d, want 503", core.HTTPStatus(err))
		}
		if strings.Contains(err.Error(), "state-secret") {
			t.Errorf("the message names the key: %v", err)
		}
	}
}

// failingStore is an scs.Store whose every call fails.
type failingStore struct{ err error }

func (f failingStore) Find(string) ([]byte, bool, error)      { return nil, false, f.err }
func (f failingStore) Commit(string, []byte, time.Time) error { return f.err }
func (f failingStore) Delete(string) error                    { return f.err }
