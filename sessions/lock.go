package sessions

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/fhirware/smart/core"
)

// LockingStorage is a [Storage] that is also a [core.Locker]: the records
// live in the Storage's scs.Store and the refresh lock in a lock server
// shared by every app instance. The engine finds the lock by a type
// assertion and holds it around each token refresh, so that several
// instances behind a load balancer refresh a launch once, and a rotated
// refresh token is never lost.
//
// An scs.Store cannot set a key only if it is absent, so the lock comes
// from a separate [core.Locker]: sessions/goredislock (go-redis),
// sessions/redislock (redigo) or sessions/pgxlock (pgx). It should run
// against the server that holds the store, so that instances that share
// the records share the lock too.
//
// A LockingStorage is also a [core.Taker] whose Take is atomic across
// processes, so the engine takes each pending launch with it: natively when
// the locker is a [StoreTaker] that reaches the store's records (one Redis
// script, or one PostgreSQL DELETE … RETURNING), under the Storage's mutex
// when the store is memstore, and otherwise with a Get and a Delete under
// the lock.
//
// Make one with [Storage.WithLocker]. It is safe for concurrent use when
// its store and locker are.
type LockingStorage struct {
	storage *Storage
	locker  core.Locker
}

// WithLocker returns a LockingStorage that keeps its records in s and takes
// its locks from l, under s's key prefix. It panics if l is nil.
//
//	st := sessions.NewStorage(goredisstore.New(client)).WithLocker(goredislock.New(client))
//	sess := eng.Session(id, st)
func (s *Storage) WithLocker(l core.Locker) *LockingStorage {
	if l == nil {
		panic("sessions: Storage.WithLocker: nil locker")
	}
	return &LockingStorage{storage: s, locker: l}
}

// Storage returns the Storage that keeps the records, without the lock.
func (s *LockingStorage) Storage() *Storage { return s.storage }

// Prefix returns the prefix put in front of every record's key and lock's
// name.
func (s *LockingStorage) Prefix() string { return s.storage.prefix }

// Get returns a copy of the value stored under key; see [Storage.Get].
func (s *LockingStorage) Get(ctx context.Context, key string) ([]byte, error) {
	return s.storage.Get(ctx, key)
}

// Set stores a copy of value under key for ttl; see [Storage.Set].
func (s *LockingStorage) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return s.storage.Set(ctx, key, value, ttl)
}

// Delete removes key; see [Storage.Delete].
func (s *LockingStorage) Delete(ctx context.Context, key string) error {
	return s.storage.Delete(ctx, key)
}

// TryLock takes the lock named key, under the key prefix, for at most ttl.
// It returns ok false and a nil error when another owner holds it. unlock
// releases the lock only while this owner still holds it; releasing one
// that ran out, or was taken since by another owner, is not an error.
//
// A failing lock server gives a *core.Error with Code
// [core.CodeStorageUnavailable], from TryLock or from unlock, with the
// locker's error as the cause.
func (s *LockingStorage) TryLock(ctx context.Context, key string, ttl time.Duration) (unlock func(context.Context) error, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, storageError("take a lock", err)
	}
	bctx, cancel := s.storage.bound(ctx) // the Storage's per-operation timeout
	release, ok, err := s.locker.TryLock(bctx, s.storage.prefix+key, ttl)
	cancel()
	if err != nil {
		return nil, false, storageError("take a lock", err)
	}
	if !ok {
		return nil, false, nil
	}
	return func(ctx context.Context) error {
		if err := release(ctx); err != nil {
			return storageError("release a lock", err)
		}
		return nil
	}, true, nil
}

// StoreTaker is an optional capability of the Locker given to
// [Storage.WithLocker]: a get-and-delete in one step, run on the server
// behind the locker against the records of an scs.Store it knows.
// goredislock knows goredisstore, redislock knows redisstore and pgxlock
// knows pgxstore, each when the store runs over the locker's own client or
// pool.
type StoreTaker interface {
	// TakeFrom returns the value store keeps under token (the full key,
	// prefix included) and deletes it, in one atomic step; found is false
	// when there is none or its expiry has passed. It returns an error
	// wrapping errors.ErrUnsupported, having sent nothing, when it cannot
	// reach store's records itself (another kind of store, or one over
	// another client): LockingStorage then takes under the lock.
	//
	// lock is the full name of the lock that a Take under the lock holds
	// for token, as TryLock would be given it. While that lock is held,
	// TakeFrom takes nothing and returns found false, and a TryLock of it
	// made while TakeFrom runs succeeds only once the record is gone: a
	// Take by an instance whose locker does not reach the store (one built
	// over another client) and a native one exclude each other.
	TakeFrom(ctx context.Context, store scs.Store, token, lock string) (value []byte, found bool, err error)
}

// takeLockTTL bounds how long a Take may hold its lock, and how long it
// waits for another Take of the same key to release it.
const takeLockTTL = 10 * time.Second

// Take returns the value stored under key and deletes it, in one step
// atomic across every process that shares the store and the lock: of
// concurrent Takes of one key, exactly one gets the value and the others
// get core.ErrNotFound. A failing store or lock server gives a *core.Error
// with Code [core.CodeStorageUnavailable], and no value.
func (s *LockingStorage) Take(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, storageError("take a record", err)
	}
	ctx, cancel := s.storage.bound(ctx) // the Storage's per-operation timeout
	defer cancel()
	store := s.storage.store()
	if _, ok := store.(*memstore.MemStore); ok {
		// memstore lives in this process: the Storage's mutex is enough.
		s.storage.mu.Lock()
		defer s.storage.mu.Unlock()
		return s.getAndDelete(ctx, key)
	}
	if t, ok := s.locker.(StoreTaker); ok {
		// The native take honours the lock the fallback below holds, so
		// that instances taking one record by the two paths exclude each
		// other.
		b, found, err := t.TakeFrom(ctx, store, s.storage.prefix+key, s.storage.prefix+takeLockName(key))
		switch {
		case errors.Is(err, errors.ErrUnsupported):
			// Not a store the locker reaches: take under the lock.
		case err != nil:
			return nil, storageError("take a record", err)
		case !found:
			return nil, core.ErrNotFound
		default:
			return bytes.Clone(b), nil
		}
	}
	unlock, err := s.waitLock(ctx, takeLockName(key))
	if err != nil {
		return nil, err
	}
	defer unlock(context.WithoutCancel(ctx))
	return s.getAndDelete(ctx, key)
}

// takeLockName is the name, before the key prefix, of the lock a Take of
// key holds when it takes with a Get and a Delete; the engine names its own
// lock for a pending launch the same way.
func takeLockName(key string) string { return "lock:" + key }

// getAndDelete reads key and deletes it; the caller makes the two one step.
func (s *LockingStorage) getAndDelete(ctx context.Context, key string) ([]byte, error) {
	b, err := s.storage.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if err := s.storage.Delete(ctx, key); err != nil {
		return nil, err
	}
	return b, nil
}

// waitLock takes the lock named key, waiting up to takeLockTTL for another
// holder to release it.
func (s *LockingStorage) waitLock(ctx context.Context, key string) (func(context.Context) error, error) {
	deadline := time.Now().Add(takeLockTTL)
	wait := time.Millisecond
	for {
		unlock, ok, err := s.TryLock(ctx, key, takeLockTTL)
		if err != nil {
			return nil, err
		}
		if ok {
			return unlock, nil
		}
		if time.Now().After(deadline) {
			return nil, storageError("take a lock", errors.New("another holder kept the lock past its time"))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, storageError("take a lock", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

var (
	_ core.Storage = (*LockingStorage)(nil)
	_ core.Locker  = (*LockingStorage)(nil)
	_ core.Taker   = (*LockingStorage)(nil)
)
