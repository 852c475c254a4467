// Package goredislock is a lock for token refreshes in Redis or Valkey,
// through go-redis: a [core.Locker] for app instances that share their
// sessions in Redis.
//
// A lock is one key, taken with SET key owner NX PX ttl and released by a
// script that deletes the key only while it still names its owner, so a
// holder that outlived its ttl never releases another's lock. A holder that
// dies leaves the key to run out on its own. Expiry is kept by Redis's
// clock, so app instances need no synchronised clocks.
//
// Give every instance the lock of the Redis that keeps the sessions, over
// the same client (cfg is the adapters.Config):
//
//	sm.Store = goredisstore.New(client)
//	cfg.Locker = goredislock.New(client)
//
// The lock is as strong as the Redis it runs on: a failover to a replica
// that had not yet received the lock's key lets a second instance refresh
// at the same time, and an EHR that rotates refresh tokens strictly may then
// end the launch (the user launches again). Nothing is corrupted.
package goredislock

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/sessions/internal/ownedlock"
)

// releaseScript deletes KEYS[1] only while it holds ARGV[1], its owner.
var releaseScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Locker takes locks in Redis through a go-redis client. Make one with
// [New]; it is safe for concurrent use.
type Locker struct {
	server server
}

// New returns a Locker over client: a *redis.Client, a *redis.ClusterClient
// (a lock is one key, so any slot works), a failover client or a ring. Lock
// names go to Redis as they are; the caller prefixes them. It panics if
// client is nil.
//
// Give the client timeouts (ReadTimeout, WriteTimeout) or set
// ContextTimeoutEnabled, so a Redis that hangs fails a refresh instead of
// holding it.
func New(client redis.UniversalClient) *Locker {
	if client == nil {
		panic("goredislock: New: nil client")
	}
	return &Locker{server{client}}
}

// TryLock takes the lock named key for ttl, rounded down to a millisecond
// and at least one. It returns ok false and a nil error when another owner
// holds it. unlock releases the lock only while this owner holds it; it
// gives up after five seconds when its context has no earlier deadline,
// and the lock then runs out with its ttl.
func (l *Locker) TryLock(ctx context.Context, key string, ttl time.Duration) (unlock func(context.Context) error, ok bool, err error) {
	return ownedlock.TryLock(ctx, "goredislock", l.server, key, ttl)
}

// server is the Redis behind a client, as an [ownedlock.Server].
type server struct {
	client redis.UniversalClient
}

func (s server) Take(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	return s.client.SetNX(ctx, key, owner, ttl).Result()
}

func (s server) Release(ctx context.Context, key, owner string) error {
	return releaseScript.Run(ctx, s.client, []string{key}, owner).Err()
}

var _ core.Locker = (*Locker)(nil)
