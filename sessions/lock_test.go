package sessions_test

import (
	"errors"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2/memstore"
	goredis "github.com/redis/go-redis/v9"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/internal/testservers"
	"github.com/fhirware/smart/sessions"
	"github.com/fhirware/smart/sessions/goredislock"
	"github.com/fhirware/smart/sessions/pgxlock"
	"github.com/fhirware/smart/sessions/redislock"
	"github.com/fhirware/smart/sessions/storagetest"
)

// A LockingStorage keeps the Locker contract with each locker, and the
// Storage contract, Take included, with its store.

func TestLockingStorageGoredis(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	store, client := goredisStore(t, addr)
	newStorage := func(t *testing.T) *sessions.LockingStorage {
		prefix := uniquePrefix(t)
		deleteRedisKeys(t, addr, prefix)
		redisKeys(t, addr, prefix)
		return sessions.NewStorage(store).WithPrefix(prefix).WithLocker(goredislock.New(client))
	}
	runLockingStorage(t, newStorage)
}

func TestLockingStorageRedigo(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	store, pool := redigoStore(t, addr)
	runLockingStorage(t, func(t *testing.T) *sessions.LockingStorage {
		prefix := uniquePrefix(t)
		deleteRedisKeys(t, addr, prefix)
		redisKeys(t, addr, prefix)
		return sessions.NewStorage(store).WithPrefix(prefix).WithLocker(redislock.New(pool))
	})
}

func TestLockingStoragePgx(t *testing.T) {
	t.Parallel()
	url := postgresURL(t)
	pool := pgPool(t, url)
	runLockingStorage(t, func(t *testing.T) *sessions.LockingStorage {
		prefix := uniquePrefix(t)
		deletePostgresRows(t, url, prefix)
		return sessions.NewStorage(pgStore(pool)).WithPrefix(prefix).WithLocker(pgxlock.New(pool))
	})
}

// A memstore takes under the Storage's mutex.
func TestLockingStorageMemstore(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	client := testservers.GoredisClient(t, addr)
	store := memstore.NewWithCleanupInterval(0)
	storagetest.Run(t, func(t *testing.T) core.Storage {
		prefix := uniquePrefix(t)
		redisKeys(t, addr, prefix)
		return sessions.NewStorage(store).WithPrefix(prefix).WithLocker(goredislock.New(client))
	})
}

// A store the locker does not share a client with takes under the lock.
func TestLockingStorageUnderLock(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	store, _ := goredisStore(t, addr)
	other := testservers.GoredisClient(t, addr)
	url := postgresURL(t)
	pool := pgPool(t, url)
	t.Run("Redis", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) core.Storage {
			prefix := uniquePrefix(t)
			deleteRedisKeys(t, addr, prefix)
			redisKeys(t, addr, prefix)
			return sessions.NewStorage(store).WithPrefix(prefix).WithLocker(goredislock.New(other))
		})
	})
	t.Run("RedisLockPostgresStore", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) core.Storage {
			prefix := uniquePrefix(t)
			deletePostgresRows(t, url, prefix)
			redisKeys(t, addr, prefix)
			return sessions.NewStorage(pgStore(pool)).WithPrefix(prefix).WithLocker(goredislock.New(other))
		})
	})
}

// runLockingStorage runs the lockertest and storagetest suites.
func runLockingStorage(t *testing.T, newStorage func(t *testing.T) *sessions.LockingStorage) {
	t.Run("Locker", func(t *testing.T) {
		storagetest.RunLocker(t, func(t *testing.T) core.Locker { return newStorage(t) })
	})
	t.Run("Storage", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) core.Storage { return newStorage(t) })
	})
}

// With the server away, Take fails with storage_unavailable too, and works
// again once the server is back.
func TestLockingStorageOutageTake(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	url := postgresURL(t)
	pgPool(t, url) // the tables
	t.Run("Goredis", func(t *testing.T) {
		t.Parallel()
		proxy := newTCPProxy(t, addr)
		store, client := goredisStore(t, proxy.Addr())
		st := redisStorage(t, addr, store)
		redisKeys(t, addr, st.Prefix())
		testOutage(t, st.WithLocker(goredislock.New(client)), proxy)
	})
	t.Run("Redigo", func(t *testing.T) {
		t.Parallel()
		proxy := newTCPProxy(t, addr)
		store, pool := redigoStore(t, proxy.Addr())
		st := redisStorage(t, addr, store)
		redisKeys(t, addr, st.Prefix())
		testOutage(t, st.WithLocker(redislock.New(pool)), proxy)
	})
	t.Run("Pgx", func(t *testing.T) {
		t.Parallel()
		pool, proxy := proxiedPgPool(t, url)
		testOutage(t, postgresStorage(t, url, pgStore(pool)).WithLocker(pgxlock.New(pool)), proxy)
	})
}

// redisKeys removes the lock keys under prefix when the test ends (the
// records' keys are under scs's own prefix).
func redisKeys(t *testing.T, addr, prefix string) {
	t.Cleanup(func() {
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		defer c.Close()
		keys, _ := c.Keys(t.Context(), prefix+"*").Result()
		if len(keys) > 0 {
			c.Del(t.Context(), keys...)
		}
	})
}

// The lock's name is the Storage's prefix and the engine's key.
func TestLockingStoragePrefix(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	_, client := goredisStore(t, addr)
	prefix := uniquePrefix(t)
	redisKeys(t, addr, prefix)
	st := sessions.NewStorage(memstore.NewWithCleanupInterval(0)).WithPrefix(prefix).WithLocker(goredislock.New(client))
	if st.Prefix() != prefix || st.Storage().Prefix() != prefix {
		t.Fatalf("Prefix() = %q, Storage().Prefix() = %q; want %q", st.Prefix(), st.Storage().Prefix(), prefix)
	}
	unlock := storagetest.MustLock(t, st, "lock:refresh:s:h", time.Minute)
	if n, err := client.Exists(t.Context(), prefix+"lock:refresh:s:h").Result(); err != nil || n != 1 {
		t.Fatalf("no key %q in Redis: %d, %v", prefix+"lock:refresh:s:h", n, err)
	}
	storagetest.MustUnlock(t, unlock)
}

// A failing lock server gives storage_unavailable, from TryLock and from
// unlock, with the locker's error kept as the cause.
func TestLockingStorageOutage(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	proxy := newTCPProxy(t, addr)
	client := goredis.NewClient(&goredis.Options{Addr: proxy.Addr(), DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	prefix := uniquePrefix(t)
	redisKeys(t, addr, prefix)
	st := sessions.NewStorage(memstore.NewWithCleanupInterval(0)).WithPrefix(prefix).WithLocker(goredislock.New(client))

	unlock := storagetest.MustLock(t, st, "lock:a", time.Minute)
	proxy.Cut()
	_, ok, err := st.TryLock(t.Context(), "lock:b", time.Minute)
	var e *core.Error
	if ok || !errors.As(err, &e) || e.Code != core.CodeStorageUnavailable || e.Err == nil {
		t.Fatalf("TryLock with Redis cut = %v, %#v; want a storage_unavailable *core.Error", ok, err)
	}
	if err := unlock(t.Context()); !errors.Is(err, core.CodeStorageUnavailable) {
		t.Fatalf("unlock with Redis cut = %v; want storage_unavailable", err)
	}
	proxy.Restore()
}

func TestWithLockerNil(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Fatal("WithLocker(nil) did not panic")
		}
	}()
	sessions.NewStorage(memstore.NewWithCleanupInterval(0)).WithLocker(nil)
}
