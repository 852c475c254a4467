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
// their tokens, and each browser's lists of launches. The engine owns the
// encoding of the bytes and the choice of keys; a Storage only keeps them.
// Keys are short printable strings; values are up to a few KiB.
//
// Implementations must be safe for concurrent use. [NewMemoryStorage] keeps
// records in the process; the sessions package turns any scs.Store into a
// Storage; sessions/storagetest is the contract any Storage must keep, and
// checks it.
//
// A Storage that several app instances share goes with a [Locker]
// (Config.Locker), which makes the engine's read-then-write steps atomic
// among them; a Storage may also be a [Taker].
type Storage interface {
	// Get returns the value stored under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key for at most ttl, replacing any value
	// already there.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Locker is a lock shared by every process that uses the same Storage
// (Config.Locker). The engine holds it around a token refresh, the take of
// a pending launch and a change to a browser's list of launches, so that
// several app instances refresh a launch once, never lose a rotated refresh
// token, and never run one callback twice. sessions/redislock,
// sessions/goredislock and sessions/pgxlock are Lockers.
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
// the process by a mutex, across processes by Config.Locker.
type Taker interface {
	Take(ctx context.Context, key string) ([]byte, error)
}
