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
// Give every instance the lock of the Redis that keeps the sessions, over
// the same pool (cfg is the adapters.Config):
//
//	sm.Store = redisstore.New(pool)
//	cfg.Locker = redislock.New(pool)
//
// The lock is as strong as the Redis it runs on: a failover to a replica
// that had not yet received the lock's key lets a second instance refresh
// at the same time, and an EHR that rotates refresh tokens strictly may then
// end the launch (the user launches again). Nothing is corrupted.
package redislock

import (
	"context"
	"errors"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/sessions/internal/ownedlock"
)

// releaseScript deletes KEYS[1] only while it holds ARGV[1], its owner.
var releaseScript = redis.NewScript(1, `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Locker takes locks in Redis through a redigo pool. Make one with [New];
// it is safe for concurrent use.
type Locker struct {
	server server
}

// New returns a Locker over pool. Lock names go to Redis as they are; the
// caller prefixes them. It panics if pool is nil.
//
// The context of a call bounds the wait for a connection and, when the
// connection is a redis.ConnWithContext (redigo's own are), the command.
// Give the pool's Dial read and write timeouts too, so a Redis that hangs
// fails a refresh instead of holding it.
func New(pool *redis.Pool) *Locker {
	if pool == nil {
		panic("redislock: New: nil pool")
	}
	return &Locker{server{pool}}
}

// TryLock takes the lock named key for ttl, rounded down to a millisecond
// and at least one. It returns ok false and a nil error when another owner
// holds it. unlock releases the lock only while this owner holds it; it
// gives up after five seconds when its context has no earlier deadline,
// and the lock then runs out with its ttl.
func (l *Locker) TryLock(ctx context.Context, key string, ttl time.Duration) (unlock func(context.Context) error, ok bool, err error) {
	return ownedlock.TryLock(ctx, "redislock", l.server, key, ttl)
}

// server is the Redis behind a pool, as an [ownedlock.Server].
type server struct {
	pool *redis.Pool
}

func (s server) Take(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	_, err = redis.String(do(ctx, conn, "SET", key, owner, "NX", "PX", ttl.Milliseconds()))
	if errors.Is(err, redis.ErrNil) {
		return false, nil // held by another owner
	}
	return err == nil, err
}

func (s server) Release(ctx context.Context, key, owner string) error {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, ok := conn.(redis.ConnWithContext); ok {
		_, err = releaseScript.DoContext(ctx, conn, key, owner)
	} else {
		_, err = releaseScript.Do(conn, key, owner)
	}
	return err
}

// do runs a command, bounded by ctx when the connection allows it.
func do(ctx context.Context, conn redis.Conn, cmd string, args ...any) (any, error) {
	if _, ok := conn.(redis.ConnWithContext); ok {
		return redis.DoContext(conn, ctx, cmd, args...)
	}
	return conn.Do(cmd, args...)
}

var _ core.Locker = (*Locker)(nil)
