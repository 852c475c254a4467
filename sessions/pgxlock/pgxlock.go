// Package pgxlock is a lock for token refreshes in PostgreSQL, through a
// pgx pool: a [core.Locker] for app instances that share their sessions in
// PostgreSQL with scs's pgxstore.
//
// A lock is a row of the table smart_locks (see [Schema]) with its owner
// and expiry. TryLock inserts the row, or takes over one whose expiry has
// passed, in one statement:
//
//	INSERT … ON CONFLICT (name) DO UPDATE … WHERE smart_locks.expiry <= clock_timestamp()
//
// and unlock deletes the row only while it still names its owner. A holder
// that dies leaves a row that the next TryLock takes over once it has run
// out. Expiry is kept by the database's clock, so app instances need no
// synchronised clocks.
//
// A lock row suits pools better than PostgreSQL's advisory locks: a session
// advisory lock belongs to one connection, so the connection would have to
// be kept out of the pool for the whole refresh (an HTTP call to the EHR)
// and released on that same connection, and it does not work at all behind
// PgBouncer in transaction mode; a transaction advisory lock would hold a
// transaction open across that HTTP call. Neither has a time limit, so a
// holder that hangs, rather than dies, would hold the lock for ever. A row
// needs no connection between the two statements, works through any
// pooler, and runs out.
//
// Give every instance the lock of the database that keeps the sessions,
// over the same pool (cfg is the adapters.Config):
//
//	sm.Store = pgxstore.New(pool)
//	cfg.Locker = pgxlock.New(pool)
package pgxlock

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/sessions/internal/ownedlock"
)

// Schema creates the lock table. Run it once, as scs's pgxstore asks for
// its sessions table, or call [Locker.CreateTable].
//
// The table is UNLOGGED: a lock lives for seconds, so it is not worth
// writing to the WAL, and a crash or a failover to a standby empties the
// table, which only frees the locks of refreshes that were cut anyway.
const Schema = `CREATE UNLOGGED TABLE IF NOT EXISTS smart_locks (
	name   TEXT PRIMARY KEY,
	owner  TEXT NOT NULL,
	expiry TIMESTAMPTZ NOT NULL
)`

const (
	lockSQL = `INSERT INTO smart_locks (name, owner, expiry)
VALUES ($1, $2, clock_timestamp() + $3::bigint * interval '1 millisecond')
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expiry = excluded.expiry
WHERE smart_locks.expiry <= clock_timestamp()`
	unlockSQL        = `DELETE FROM smart_locks WHERE name = $1 AND owner = $2`
	deleteExpiredSQL = `DELETE FROM smart_locks WHERE expiry <= clock_timestamp()`
)

// Locker takes locks in a PostgreSQL table through a pgx pool. Make one
// with [New]; it is safe for concurrent use.
type Locker struct {
	server server
}

// New returns a Locker over pool, with its locks in the table smart_locks,
// which must exist (see [Schema]). Lock names are stored as they are; the
// caller prefixes them. It panics if pool is nil.
//
// The context of each call bounds its statement. The pool has no query
// timeout of its own: pass contexts with deadlines (the engine does), so a
// database that hangs fails a refresh instead of holding it.
func New(pool *pgxpool.Pool) *Locker {
	if pool == nil {
		panic("pgxlock: New: nil pool")
	}
	return &Locker{server{pool}}
}

// CreateTable runs [Schema]: it creates the lock table if it is missing.
func (l *Locker) CreateTable(ctx context.Context) error {
	if _, err := l.server.pool.Exec(ctx, Schema); err != nil {
		return fmt.Errorf("pgxlock: creating the lock table: %w", err)
	}
	return nil
}

// TryLock takes the lock named key for ttl, rounded down to a millisecond
// and at least one. It returns ok false and a nil error when another owner
// holds it. unlock releases the lock only while this owner holds it; it
// gives up after five seconds when its context has no earlier deadline,
// and the lock then runs out with its ttl.
func (l *Locker) TryLock(ctx context.Context, key string, ttl time.Duration) (unlock func(context.Context) error, ok bool, err error) {
	return ownedlock.TryLock(ctx, "pgxlock", l.server, key, ttl)
}

// DeleteExpired deletes the rows of locks that ran out without being
// released, left by holders that died, and returns how many it deleted.
// They are harmless (TryLock takes them over) and few; an app may call it
// now and then, from one instance, to keep the table small.
func (l *Locker) DeleteExpired(ctx context.Context) (int64, error) {
	tag, err := l.server.pool.Exec(ctx, deleteExpiredSQL)
	if err != nil {
		return 0, fmt.Errorf("pgxlock: deleting expired locks: %w", err)
	}
	return tag.RowsAffected(), nil
}

// server is the database behind a pool, as an [ownedlock.Server].
type server struct {
	pool *pgxpool.Pool
}

func (s server) Take(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	tag, err := s.pool.Exec(ctx, lockSQL, key, owner, ttl.Milliseconds())
	return tag.RowsAffected() == 1, err
}

func (s server) Release(ctx context.Context, key, owner string) error {
	_, err := s.pool.Exec(ctx, unlockSQL, key, owner)
	return err
}

var _ core.Locker = (*Locker)(nil)
