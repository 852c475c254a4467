package goredislock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/internal/testservers"
	"github.com/fhirware/smart/sessions/goredislock"
	"github.com/fhirware/smart/sessions/lockertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLocker(t *testing.T) {
	t.Parallel()
	addr := testservers.RedisAddr(t)
	client := testservers.GoredisClient(t, addr)
	lockertest.Run(t, func(t *testing.T) core.Locker {
		prefix := testservers.UniquePrefix(t)
		testservers.DeleteRedisKeys(t, addr, prefix+"*")
		return lockertest.Prefixed(goredislock.New(client), prefix)
	})
}

// The lock is one key holding its owner, with Redis's expiry.
func TestLockerKey(t *testing.T) {
	t.Parallel()
	addr := testservers.RedisAddr(t)
	client := testservers.GoredisClient(t, addr)
	prefix := testservers.UniquePrefix(t)
	testservers.DeleteRedisKeys(t, addr, prefix+"*")
	unlock := lockertest.MustLock(t, goredislock.New(client), prefix+"lock:a", 10*time.Second)
	ttl, err := client.PTTL(t.Context(), prefix+"lock:a").Result()
	if err != nil || ttl <= 9*time.Second || ttl > 10*time.Second {
		t.Fatalf("PTTL = %v, %v; want about 10s", ttl, err)
	}
	lockertest.MustUnlock(t, unlock)
	if n, err := client.Exists(t.Context(), prefix+"lock:a").Result(); err != nil || n != 0 {
		t.Fatalf("the key is still there after unlock: %d, %v", n, err)
	}
}

func TestLockerOutage(t *testing.T) {
	t.Parallel()
	addr := testservers.RedisAddr(t)
	proxy := testservers.NewTCPProxy(t, addr)
	client := goredis.NewClient(&goredis.Options{
		Addr:         proxy.Addr(),
		DialTimeout:  time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
		MaxRetries:   -1,
	})
	t.Cleanup(func() { client.Close() })
	prefix := testservers.UniquePrefix(t)
	testservers.DeleteRedisKeys(t, addr, prefix+"*")
	lockertest.Outage(t, lockertest.Prefixed(goredislock.New(client), prefix), proxy.Cut, proxy.Restore)
}

// TakeFrom takes a goredisstore's record over the Locker's client, with
// the store's prefix, once; a store over another client, or another kind
// of store, is not the Locker's to take from.
func TestTakeFrom(t *testing.T) {
	t.Parallel()
	addr := testservers.RedisAddr(t)
	client := testservers.GoredisClient(t, addr)
	prefix := testservers.UniquePrefix(t)
	testservers.DeleteRedisKeys(t, addr, prefix+"*")
	l := goredislock.New(client)
	for _, store := range []scs.CtxStore{goredisstore.New(client), goredisstore.NewWithPrefix(client, prefix+"own:")} {
		if err := store.CommitCtx(t.Context(), prefix+"k", []byte("v"), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		b, found, err := l.TakeFrom(t.Context(), store, prefix+"k", prefix+"lock:k")
		if err != nil || !found || string(b) != "v" {
			t.Fatalf("TakeFrom = %q, %v, %v; want the record", b, found, err)
		}
		if b, found, err := l.TakeFrom(t.Context(), store, prefix+"k", prefix+"lock:k"); err != nil || found {
			t.Fatalf("second TakeFrom = %q, %v, %v; want nothing", b, found, err)
		}
		if _, found, _ := store.FindCtx(t.Context(), prefix+"k"); found {
			t.Fatal("the record is still in the store")
		}
	}
	t.Cleanup(func() { client.Del(context.Background(), "scs:session:"+prefix+"k") })
	other := testservers.GoredisClient(t, addr)
	for _, store := range []scs.Store{goredisstore.New(other), memstore.NewWithCleanupInterval(0)} {
		if _, _, err := l.TakeFrom(t.Context(), store, prefix+"k", prefix+"lock:k"); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("TakeFrom a %T not over the Locker's client = %v; want errors.ErrUnsupported", store, err)
		}
	}
}
