package redislock_test

import (
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"
	"go.uber.org/goleak"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/internal/testservers"
	"github.com/fhirware/smart/sessions/redislock"
	"github.com/fhirware/smart/sessions/storagetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLocker(t *testing.T) {
	t.Parallel()
	addr := testservers.RedisAddr(t)
	pool := testservers.RedigoPool(t, addr)
	storagetest.RunLocker(t, func(t *testing.T) core.Locker {
		prefix := testservers.UniquePrefix(t)
		testservers.DeleteRedisKeys(t, addr, prefix+"*")
		return storagetest.PrefixedLocker(redislock.New(pool), prefix)
	})
}

// The lock is one key holding its owner, with Redis's expiry.
func TestLockerKey(t *testing.T) {
	t.Parallel()
	addr := testservers.RedisAddr(t)
	pool := testservers.RedigoPool(t, addr)
	prefix := testservers.UniquePrefix(t)
	testservers.DeleteRedisKeys(t, addr, prefix+"*")
	unlock := storagetest.MustLock(t, redislock.New(pool), prefix+"lock:a", 10*time.Second)
	conn := pool.Get()
	defer conn.Close()
	ms, err := redigo.Int64(conn.Do("PTTL", prefix+"lock:a"))
	if err != nil || ms <= 9000 || ms > 10000 {
		t.Fatalf("PTTL = %v, %v; want about 10000", ms, err)
	}
	storagetest.MustUnlock(t, unlock)
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
	storagetest.LockerOutage(t, storagetest.PrefixedLocker(redislock.New(pool), prefix), proxy.Cut, proxy.Restore)
}
