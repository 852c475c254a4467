package goredislock_test

import (
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/internal/testservers"
	"github.com/fhirware/smart/sessions/goredislock"
	"github.com/fhirware/smart/sessions/storagetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLocker(t *testing.T) {
	t.Parallel()
	addr := testservers.RedisAddr(t)
	client := testservers.GoredisClient(t, addr)
	storagetest.RunLocker(t, func(t *testing.T) core.Locker {
		prefix := testservers.UniquePrefix(t)
		testservers.DeleteRedisKeys(t, addr, prefix+"*")
		return storagetest.PrefixedLocker(goredislock.New(client), prefix)
	})
}

// The lock is one key holding its owner, with Redis's expiry.
func TestLockerKey(t *testing.T) {
	t.Parallel()
	addr := testservers.RedisAddr(t)
	client := testservers.GoredisClient(t, addr)
	prefix := testservers.UniquePrefix(t)
	testservers.DeleteRedisKeys(t, addr, prefix+"*")
	unlock := storagetest.MustLock(t, goredislock.New(client), prefix+"lock:a", 10*time.Second)
	ttl, err := client.PTTL(t.Context(), prefix+"lock:a").Result()
	if err != nil || ttl <= 9*time.Second || ttl > 10*time.Second {
		t.Fatalf("PTTL = %v, %v; want about 10s", ttl, err)
	}
	storagetest.MustUnlock(t, unlock)
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
	storagetest.LockerOutage(t, storagetest.PrefixedLocker(goredislock.New(client), prefix), proxy.Cut, proxy.Restore)
}
