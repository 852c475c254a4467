package sessions

import (
	"context"
	"time"

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
	release, ok, err := s.locker.TryLock(ctx, s.storage.prefix+key, ttl)
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

var (
	_ core.Storage = (*LockingStorage)(nil)
	_ core.Locker  = (*LockingStorage)(nil)
)
