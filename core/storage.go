package core

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by a Storage for a key it does not hold or whose
// time-to-live has run out.
var ErrNotFound = errors.New("smart: storage: record not found")

// Storage keeps the engine's records: pending launches, launch records with
// their tokens, and each browser session's list of launches. The engine owns
// the encoding of the bytes and the choice of keys; a Storage only keeps
// them. Keys are short printable strings; values are up to a few KiB.
//
// Implementations must be safe for concurrent use. The sessions package turns
// any scs.Store into a Storage; sessions/storagetest is the contract any
// Storage must keep, and checks it.
//
// Three operations of the engine read and then write, and must be atomic
// among every process that shares the Storage: the take of a pending
// launch at its callback (one token request per state), a token refresh
// (one refresh per launch, no rotated refresh token lost) and a change to
// a browser session's list of launches (no launch lost when tabs finish
// together). The engine uses [Taker] for the first and [Locker] for the
// others when the Storage has them; otherwise its own lock of the process,
// which makes them atomic within one process only. A Storage that several
// app instances share should therefore be a Locker, and a Taker whose Take
// is atomic across them (sessions.LockingStorage is both).
type Storage interface {
	// Get returns the value stored under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key for at most ttl, replacing any value
	// already there.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Locker is an optional Storage capability: a lock shared by every process
// that uses the same storage. When the Storage is a Locker, the engine holds
// the lock around a token refresh, so that several app instances refresh a
// launch once and never lose a rotated refresh token.
type Locker interface {
	// TryLock takes the lock named key for at most ttl. It returns ok false
	// and a nil error when another owner holds the lock. The returned unlock
	// releases the lock only if this owner still holds it.
	TryLock(ctx context.Context, key string, ttl time.Duration) (unlock func(context.Context) error, ok bool, err error)
}

// Taker is an optional Storage capability: Take returns the value stored
// under key and deletes it in one atomic step, or ErrNotFound, so that of
// two concurrent Takes of one key exactly one gets the value. The engine
// takes each pending launch at its callback, so that a callback replayed
// while the first is still in flight never makes a second token request.
//
// A Storage may be a Taker only if its Take is atomic for every value it
// can hold and among every process that shares it: the engine finds the
// capability by a type assertion, and then relies on it alone.
//
// Without it, the engine makes a Get and a Delete atomic itself: within
// the process by a mutex, across processes by the Storage's lock when the
// Storage is a Locker. A Storage shared by several processes should
// therefore be a Taker or a Locker.
type Taker interface {
	Take(ctx context.Context, key string) ([]byte, error)
}
