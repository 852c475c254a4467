package sessions_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/sessions"
	"github.com/fhirware/smart/sessions/storagetest"
)

// Every store keeps the storagetest contract, and the few rules of a
// Storage beyond it (sessionsTTL); the outage cases take the server away.

func TestStorageMemstore(t *testing.T) {
	t.Parallel()
	runStorage(t, func(t *testing.T) *sessions.Storage {
		return sessions.NewStorage(memstore.NewWithCleanupInterval(0))
	})
}

func TestStorageMemstoreThroughManager(t *testing.T) {
	t.Parallel()
	runStorage(t, func(t *testing.T) *sessions.Storage {
		sm := scs.New()
		sm.Store = memstore.NewWithCleanupInterval(0)
		return sessions.NewStorageFromManager(sm)
	})
}

func TestStorageRedisstore(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	runStorage(t, func(t *testing.T) *sessions.Storage {
		store, _ := redigoStore(t, addr)
		return redisStorage(t, addr, store)
	})
}

func TestStorageGoredisstore(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	runStorage(t, func(t *testing.T) *sessions.Storage {
		store, _ := goredisStore(t, addr)
		return redisStorage(t, addr, store)
	})
}

func TestStoragePgxstore(t *testing.T) {
	t.Parallel()
	url := postgresURL(t)
	pool := pgPool(t, url)
	runStorage(t, func(t *testing.T) *sessions.Storage {
		return postgresStorage(t, url, pgStore(pool))
	})
}

// runStorage runs the storagetest suite and sessionsTTL.
func runStorage(t *testing.T, newStorage func(t *testing.T) *sessions.Storage) {
	storagetest.Run(t, func(t *testing.T) core.Storage { return newStorage(t) })
	t.Run("SessionsTTL", func(t *testing.T) {
		t.Parallel()
		sessionsTTL(t, newStorage(t))
	})
}

// sessionsTTL checks a Storage's own ttl rules: a ttl below MinTTL is
// raised to it (goredisstore would keep a record whose ttl ran out before
// the command arrived with no expiry at all), and a ttl of zero or less
// deletes the key.
func sessionsTTL(t *testing.T, s core.Storage) {
	mustSet(t, s, "short", []byte("v"), time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	mustGet(t, s, "short", []byte("v"))

	mustSet(t, s, "k", []byte("v"), time.Minute)
	mustSet(t, s, "k", []byte("v"), 0)
	mustNotFind(t, s, "k")
	mustSet(t, s, "k", []byte("v"), -time.Second)
	mustNotFind(t, s, "k")
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

// testOutage runs storagetest.Outage, and checks that each failure is a
// *core.Error with Code storage_unavailable and Op storage, keeping the
// store's error as its cause.
func testOutage(t *testing.T, s core.Storage, proxy *tcpProxy) {
	storagetest.Outage(t, s, func() {
		proxy.Cut()
		ctx := t.Context()
		_, err := s.Get(ctx, "before")
		errs := map[string]error{"Get": err, "Set": s.Set(ctx, "during", []byte("v"), time.Minute), "Delete": s.Delete(ctx, "during")}
		for op, err := range errs {
			var e *core.Error
			if !errors.As(err, &e) || e.Code != core.CodeStorageUnavailable || e.Op != "storage" || e.Err == nil {
				t.Errorf("%s with the server gone = %#v; want a *core.Error, storage_unavailable, Op storage, with the cause", op, err)
			}
		}
	}, proxy.Restore)
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
	if string(got) != string(want) {
		t.Fatalf("Get(%q) = %.40q, want %.40q", key, got, want)
	}
}

func mustNotFind(t *testing.T, s core.Storage, key string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Get(%q) = %.40q, %v; want core.ErrNotFound", key, got, err)
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
		if e.Code.HTTPStatus() != http.StatusServiceUnavailable {
			t.Errorf("the code's HTTPStatus = %d, want 503", e.Code.HTTPStatus())
		}
		if strings.Contains(err.Error(), "state-secret") {
			t.Errorf("the message names the key: %v", err)
		}
	}
}

// A Storage is not a core.Taker: an scs.Store has no get-and-delete, and
// the engine relies on a Taker's Take alone, so it must take a Storage's
// pending launches with a Get and a Delete under its lock (across
// instances, core.Config.Locker's).
func TestStorageIsNotTaker(t *testing.T) {
	t.Parallel()
	sm := newManager()
	for _, s := range []core.Storage{
		sessions.NewStorage(memstore.NewWithCleanupInterval(0)),
		sessions.NewStorageFromManager(sm),
		sessions.New(sm).Storage(),
	} {
		if _, ok := s.(core.Taker); ok {
			t.Errorf("%T is a core.Taker", s)
		}
	}
}

// failingStore is an scs.Store whose every call fails.
type failingStore struct{ err error }

func (f failingStore) Find(string) ([]byte, bool, error)      { return nil, false, f.err }
func (f failingStore) Commit(string, []byte, time.Time) error { return f.err }
func (f failingStore) Delete(string) error                    { return f.err }
