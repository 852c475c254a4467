package redislock_test

import (
	"errors"
	"testing"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	redigo "github.com/gomodule/redigo/redis"
	"go.uber.org/goleak"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/internal/testservers"
	"github.com/fhirware/smart/sessions/lockertest"
	"github.com/fhirware/smart/sessions/redislock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLocker(t *testing.T) {
	t.Parallel()
	addr := testservers.RedisAddr(t)
	pool := testservers.RedigoPool(t, addr)
	lockertest.Run(t, func(t *testing.T) core.Locker {
		prefix := testservers.UniquePrefix(t)
		testservers.DeleteRedisKeys(t, addr, prefix+"*")
		return lockertest.Prefixed(redislock.New(pool), prefix)
	})
}

// The lock is one key holding its owner, with Redis's expiry.
func TestLockerKey(t *testing.T) {
	t.Parallel()
	addr := testservers.RedisAddr(t)
	pool := testservers.RedigoPool(t, addr)
	prefix := testservers.UniquePrefix(t)
	testservers.DeleteRedisKeys(t, addr, prefix+"*")
	unlock := lockertest.MustLock(t, redislock.New(pool), prefix+"lock:a", 10*time.Second)
	conn := pool.Get()
	defer conn.Close()
	ms, err := redigo.Int64(conn.Do("PTTL", prefix+"lock:a"))
	if err != nil || ms <= 9000 || ms > 10000 {
		t.Fatalf("PTTL = %v, %v; want about 10000", ms, err)
	}
	lockertest.MustUnlock(t, unlock)
	if n, err := redigo.Int(conn.Do("EXISTS", prefix+"lock:a")); err != nil || n != 0 {
		t.Fatalf("the key is still there after unlock: %d, %v", n, err)
	}
}

func TestLockerOutage(t *testing.T) {
	t.Parallel()
	addr := testservers.RedisAddr(t)
	proxy := testservers.NewTCPProxy(t, addr)
	pool := testservers.RedigoPool(t, proxy.Addr())
	prefix := testservers.UniquePrefix(t)
	testservers.DeleteRedisKeys(t, addr, prefix+"*")
	lockertest.Outage(t, lockertest.Prefixed(redislock.New(pool), prefix), proxy.Cut, proxy.Restore)
}

// TakeFrom takes a redisstore's record over the Locker's pool, with the
// store's prefix, once; a store over another pool, or another kind of
// store, is not the Locker's to take from.
func TestTakeFrom(t *testing.T) {
	t.Parallel()
	addr := testservers.RedisAddr(t)
	pool := testservers.RedigoPool(t, addr)
	prefix := testservers.UniquePrefix(t)
	testservers.DeleteRedisKeys(t, addr, prefix+"*")
	l := redislock.New(pool)
	for _, store := range []scs.Store{redisstore.New(pool), redisstore.NewWithPrefix(pool, prefix+"own:")} {
		if err := store.Commit(prefix+"k", []byte("v"), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		b, found, err := l.TakeFrom(t.Context(), store, prefix+"k", prefix+"lock:k")
		if err != nil || !found || string(b) != "v" {
			t.Fatalf("TakeFrom = %q, %v, %v; want the record", b, found, err)
		}
		if b, found, err := l.TakeFrom(t.Context(), store, prefix+"k", prefix+"lock:k"); err != nil || found {
			t.Fatalf("second TakeFrom = %q, %v, %v; want nothing", b, found, err)
		}
		if _, found, _ := store.Find(prefix + "k"); found {
			t.Fatal("the record is still in the store")
		}
	}
	other := testservers.RedigoPool(t, addr)
	for _, store := range []scs.Store{redisstore.New(other), memstore.NewWithCleanupInterval(0)} {
		if _, _, err := l.TakeFrom(t.Context(), store, prefix+"k", prefix+"lock:k"); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("TakeFrom a %T not over the Locker's pool = %v; want errors.ErrUnsupported", store, err)
		}
	}
}
