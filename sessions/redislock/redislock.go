// Package redislock is a lock for token refreshes in Redis or Valkey,
// through a redigo pool: a [core.Locker] for app instances that share their
// sessions in Redis with scs's redisstore.
//
// A lock is one key, taken with SET key owner NX PX ttl and released by a
// script that deletes the key only while it still names its owner, so a
// holder that outlived its ttl never releases another's lock. A holder that
// dies leaves the key to run out on its own. Expiry is kept by Redis's
// clock, so app instances need no synchronised clocks.
//
// Combine it with the store that keeps the records, over the same pool:
//
//	st := sessions.NewStorage(redisstore.New(pool)).WithLocker(redislock.New(pool))
//
// The Locker is also a sessions.StoreTaker: when the records are in a
// redisstore over the Locker's own pool, a LockingStorage takes a pending
// launch with one script (GET and DEL of the store's key, with the store's
// key prefix, "scs:session:" by default), so that of concurrent callbacks
// with one state exactly one gets the launch, in one round trip. The script
// takes nothing while the lock that a take under the lock holds is held,
// so instances whose lockers run over other pools, and take under the
// lock, still take each launch once with it. The script runs on every
// Redis version (GETDEL needs 6.2).
//
// The lock is as strong as the Redis it runs on: a failover to a replica
// that had not yet received the lock's key lets a second instance refresh
// at the same time, and an EHR that rotates refresh tokens strictly may then
// end the launch (the user launches again). Nothing is corrupted.
package redislock

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/gomodule/redigo/redis"

	"github.com/fhirware/smart/core"
)

// releaseScript deletes KEYS[1] only while it holds ARGV[1], its owner.
var releaseScript = redis.NewScript(1, `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// takeScript returns the value of KEYS[1] and deletes the key, in one step,
// unless the lock KEYS[2] is held: then it returns nil and deletes nothing.
var takeScript = redis.NewScript(2, `if redis.call("EXISTS", KEYS[2]) == 1 then return false end local v = redis.call("GET", KEYS[1]) if v then redis.call("DEL", KEYS[1]) end return v`)

// UnlockTimeout bounds the release of a lock when the context passed to
// unlock has no earlier deadline. A release that fails leaves the lock to
// run out with its ttl.
const UnlockTimeout = 5 * time.Second

// Locker takes locks in Redis through a redigo pool. Make one with [New];
// it is safe for concurrent use.
type Locker struct {
	pool *redis.Pool
}

// New returns a Locker over pool. Lock names go to Redis as they are; the
// caller prefixes them (a sessions.LockingStorage puts its key prefix in
// front). It panics if pool is nil.
//
// The context of a call bounds the wait for a connection and, when the
// connection is a redis.ConnWithContext (redigo's own are), the command.
// Give the pool's Dial read and write timeouts too, so a Redis that hangs
// fails a refresh instead of holding it.
func New(pool *redis.Pool) *Locker {
	if pool == nil {
		panic("redislock: New: nil pool")
	}
	return &Locker{pool: pool}
}

// TryLock takes the lock named key for ttl, rounded down to a millisecond
// and at least one. It returns ok false and a nil error when another owner
// holds it. unlock releases the lock only while this owner holds it.
func (l *Locker) TryLock(ctx context.Context, key string, ttl time.Duration) (unlock func(context.Context) error, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("redislock: taking a lock: %w", err)
	}
	owner := newOwner()
	conn, err := l.pool.GetContext(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("redislock: taking a lock: %w", err)
	}
	defer conn.Close()
	ms := max(ttl.Milliseconds(), 1)
	_, err = redis.String(do(ctx, conn, "SET", key, owner, "NX", "PX", ms))
	switch {
	case errors.Is(err, redis.ErrNil):
		return nil, false, nil // held by another owner
	case err != nil:
		// The SET may have reached Redis before the failure (a deadline
		// that ran out while waiting for the reply): release what it may
		// have taken, so that nobody waits for a lock without a holder.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = l.release(rctx, key, owner)
		cancel()
		return nil, false, fmt.Errorf("redislock: taking a lock: %w", err)
	}
	return func(ctx context.Context) error { return l.release(ctx, key, owner) }, true, nil
}

// release deletes the lock named key if owner holds it.
func (l *Locker) release(ctx context.Context, key, owner string) error {
	ctx, cancel := context.WithTimeout(ctx, UnlockTimeout)
	defer cancel()
	conn, err := l.pool.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("redislock: releasing a lock: %w", err)
	}
	defer conn.Close()
	if _, err := runRelease(ctx, conn, key, owner); err != nil {
		return fmt.Errorf("redislock: releasing a lock: %w", err)
	}
	return nil
}

// TakeFrom returns the value that store, a redisstore over l's pool, keeps
// under token, and deletes it, in one atomic step; found is false when
// there is none or it has run out. While the lock named lock is held (a
// Take under the lock is taking the record), it takes nothing and returns
// found false; the script checks the lock and takes the record in one step,
// so the two kinds of Take exclude each other. For another store it returns
// an error wrapping errors.ErrUnsupported and sends nothing.
//
// The store's pool and key prefix are unexported, so TakeFrom reads them
// by reflection; a store of another scs version whose fields differ is
// not supported, and a LockingStorage takes its records under the lock.
func (l *Locker) TakeFrom(ctx context.Context, store scs.Store, token, lock string) (value []byte, found bool, err error) {
	prefix, ok := storePrefix(store, l.pool)
	if !ok {
		return nil, false, fmt.Errorf("redislock: the store is not a redisstore over the locker's pool: %w", errors.ErrUnsupported)
	}
	conn, err := l.pool.GetContext(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("redislock: taking a record: %w", err)
	}
	defer conn.Close()
	var reply any
	if _, ok := conn.(redis.ConnWithContext); ok {
		reply, err = takeScript.DoContext(ctx, conn, prefix+token, lock)
	} else {
		reply, err = takeScript.Do(conn, prefix+token, lock)
	}
	b, err := redis.Bytes(reply, err)
	switch {
	case errors.Is(err, redis.ErrNil):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("redislock: taking a record: %w", err)
	}
	return b, true, nil
}

// storePrefix returns the key prefix of store when it is a redisstore over
// pool.
func storePrefix(store scs.Store, pool *redis.Pool) (string, bool) {
	st, ok := store.(*redisstore.RedisStore)
	if !ok || st == nil {
		return "", false
	}
	v := reflect.ValueOf(st).Elem()
	p, pfx := v.FieldByName("pool"), v.FieldByName("prefix")
	if p.Kind() != reflect.Pointer || pfx.Kind() != reflect.String || p.Pointer() != reflect.ValueOf(pool).Pointer() {
		return "", false
	}
	return pfx.String(), true
}

// do runs a command, bounded by ctx when the connection allows it.
func do(ctx context.Context, conn redis.Conn, cmd string, args ...any) (any, error) {
	if _, ok := conn.(redis.ConnWithContext); ok {
		return redis.DoContext(conn, ctx, cmd, args...)
	}
	return conn.Do(cmd, args...)
}

// runRelease runs the release script, bounded by ctx when the connection
// allows it.
func runRelease(ctx context.Context, conn redis.Conn, key, owner string) (any, error) {
	if _, ok := conn.(redis.ConnWithContext); ok {
		return releaseScript.DoContext(ctx, conn, key, owner)
	}
	return releaseScript.Do(conn, key, owner)
}

// newOwner returns 128 random bits naming one holder of a lock.
func newOwner() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var _ core.Locker = (*Locker)(nil)
