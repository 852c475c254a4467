// Package ownedlock is what the lockers of sessions/goredislock,
// sessions/redislock and sessions/pgxlock share: a lock on a server that
// names its owner, taken with a fresh owner token and released only while
// it still names that owner.
//
// Each locker says how its server takes and releases such a lock (a
// [Server]); [TryLock] does the rest the same way for all three: it refuses
// a cancelled context, makes the owner token, releases what a take that
// failed may have taken, and bounds every release.
package ownedlock

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"
)

// UnlockTimeout bounds the release of a lock when the context passed to
// unlock has no earlier deadline. A release that fails leaves the lock to
// run out with its ttl.
const UnlockTimeout = 5 * time.Second

// abandonTimeout bounds the release that follows a take that failed.
const abandonTimeout = time.Second

// Server takes and releases locks on one server.
type Server interface {
	// Take sets the lock named key to owner for ttl, unless another owner
	// holds it, and reports whether it did. ttl is a whole number of
	// milliseconds, one at least.
	Take(ctx context.Context, key, owner string, ttl time.Duration) (bool, error)
	// Release deletes the lock named key if it still names owner.
	Release(ctx context.Context, key, owner string) error
}

// TryLock takes the lock named key on s for ttl, rounded down to a
// millisecond and at least one, as core.Locker's TryLock does: it returns
// ok false and a nil error when another owner holds it, and unlock
// releases the lock only while this owner holds it, within
// [UnlockTimeout]. pkg starts the messages of its errors ("redislock").
func TryLock(ctx context.Context, pkg string, s Server, key string, ttl time.Duration) (unlock func(context.Context) error, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("%s: taking a lock: %w", pkg, err)
	}
	owner := newOwner()
	ok, err = s.Take(ctx, key, owner, max(ttl.Truncate(time.Millisecond), time.Millisecond))
	if err != nil {
		// The take may have reached the server before the failure (a
		// deadline that ran out while waiting for the reply): release
		// what it may have taken, so that nobody waits for a lock
		// without a holder.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abandonTimeout)
		_ = s.Release(rctx, key, owner)
		cancel()
		return nil, false, fmt.Errorf("%s: taking a lock: %w", pkg, err)
	}
	if !ok {
		return nil, false, nil // held by another owner
	}
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, UnlockTimeout)
		defer cancel()
		if err := s.Release(ctx, key, owner); err != nil {
			return fmt.Errorf("%s: releasing a lock: %w", pkg, err)
		}
		return nil
	}, true, nil
}

// newOwner returns 128 random bits naming one holder of a lock.
func newOwner() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
