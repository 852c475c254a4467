package sessions_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/redisstore"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/internal/testservers"
	"github.com/fhirware/smart/sessions"
	"github.com/fhirware/smart/sessions/goredislock"
	"github.com/fhirware/smart/sessions/pgxlock"
	"github.com/fhirware/smart/sessions/redislock"
)

// Instances may disagree on how they take: one whose locker runs over the
// store's own client or pool takes natively, one whose locker runs over
// another (built separately, or before an upgrade) takes with a Get and a
// Delete under the lock. Of two concurrent Takes of one record, one on each
// path, at most one gets it.
func TestLockingStorageMixedTakePaths(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	url := postgresURL(t)
	t.Run("goredis", func(t *testing.T) {
		t.Parallel()
		c1 := testservers.GoredisClient(t, addr)
		c2 := testservers.GoredisClient(t, addr)
		prefix := uniquePrefix(t)
		deleteRedisKeys(t, addr, prefix)
		redisKeys(t, addr, prefix)
		store := goredisstore.New(c1)
		native := sessions.NewStorage(store).WithPrefix(prefix).WithLocker(goredislock.New(c1))
		underLock := sessions.NewStorage(store).WithPrefix(prefix).WithLocker(goredislock.New(c2))
		takeOnce(t, native, underLock)
		refuseWhileLocked(t, native, underLock)
	})
	t.Run("redigo", func(t *testing.T) {
		t.Parallel()
		p1 := testservers.RedigoPool(t, addr)
		p2 := testservers.RedigoPool(t, addr)
		prefix := uniquePrefix(t)
		deleteRedisKeys(t, addr, prefix)
		redisKeys(t, addr, prefix)
		store := redisstore.New(p1)
		native := sessions.NewStorage(store).WithPrefix(prefix).WithLocker(redislock.New(p1))
		underLock := sessions.NewStorage(store).WithPrefix(prefix).WithLocker(redislock.New(p2))
		takeOnce(t, native, underLock)
		refuseWhileLocked(t, native, underLock)
	})
	t.Run("pgx", func(t *testing.T) {
		t.Parallel()
		p1 := pgPool(t, url)
		p2 := pgPool(t, url)
		prefix := uniquePrefix(t)
		deletePostgresRows(t, url, prefix)
		store := pgStore(p1)
		native := sessions.NewStorage(store).WithPrefix(prefix).WithLocker(pgxlock.New(p1))
		underLock := sessions.NewStorage(store).WithPrefix(prefix).WithLocker(pgxlock.New(p2))
		takeOnce(t, native, underLock)
		refuseWhileLocked(t, native, underLock)
	})
}

// takeOnce writes records and takes each with a and b at once, and fails
// if both get one.
func takeOnce(t *testing.T, a, b *sessions.LockingStorage) {
	t.Helper()
	ctx := context.Background()
	const n = 300
	doubles, lost := 0, 0
	for i := range n {
		key := fmt.Sprintf("pending:%d", i)
		if err := a.Set(ctx, key, []byte("launch"), time.Minute); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		got := make([]bool, 2)
		for j, st := range []*sessions.LockingStorage{a, b} {
			wg.Go(func() {
				v, err := st.Take(ctx, key)
				got[j] = err == nil && string(v) == "launch"
			})
		}
		wg.Wait()
		switch {
		case got[0] && got[1]:
			doubles++
		case !got[0] && !got[1]:
			lost++
		}
	}
	if doubles > 0 {
		t.Errorf("%d of %d records were taken twice", doubles, n)
	}
	if lost > 0 {
		t.Errorf("%d of %d records were taken by neither", lost, n)
	}
}

// refuseWhileLocked checks that native's Take takes nothing while
// underLock holds the lock of a Take under the lock, and takes the record
// once it is released.
func refuseWhileLocked(t *testing.T, native, underLock *sessions.LockingStorage) {
	t.Helper()
	ctx := t.Context()
	if err := native.Set(ctx, "pending:held", []byte("launch"), time.Minute); err != nil {
		t.Fatal(err)
	}
	unlock, ok, err := underLock.TryLock(ctx, "lock:pending:held", time.Minute)
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	if v, err := native.Take(ctx, "pending:held"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Take while the lock is held = %q, %v; want core.ErrNotFound", v, err)
	}
	if _, err := native.Get(ctx, "pending:held"); err != nil {
		t.Fatalf("Get after the refused Take = %v; want the record still there", err)
	}
	if err := unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := native.Take(ctx, "pending:held"); err != nil || string(v) != "launch" {
		t.Fatalf("Take after the lock is released = %q, %v; want the record", v, err)
	}
}
