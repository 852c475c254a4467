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
// The Locker is also a sessions.StoreTaker: when the records are in a
// pgxstore over the Locker's own pool, a LockingStorage takes a pending
// launch with one statement on pgxstore's table,
//
//	DELETE FROM sessions WHERE token = $1 AND current_timestamp < expiry RETURNING data
//
// so that of concurrent callbacks with one state exactly one gets the
// launch. The statement runs in a transaction that first takes the lock a
// take under the lock would hold, and drops it before committing: a take
// by an instance whose locker runs over another pool, under the lock, and
// this one exclude each other.
//
// Combine it with the store that keeps the records, over the same pool:
//
//	st := sessions.NewStorage(pgxstore.New(pool)).WithLocker(pgxlock.New(pool))
package pgxlock

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fhirware/smart/core"
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
	// takeSQL is pgxstore's Find and Delete in one statement, on its table;
	// TakeFrom runs it between lockSQL and unlockSQL, in one transaction.
	takeSQL = `DELETE FROM sessions WHERE token = $1 AND current_timestamp < expiry RETURNING data`
)

// takeLockTTL is the expiry given to the lock TakeFrom takes; the lock is
// released in the same transaction, so nobody ever sees it.
const takeLockTTL = 10 * time.Second

// UnlockTimeout bounds the release of a lock when the context passed to
// unlock has no earlier deadline. A release that fails leaves the lock to
// run out with its ttl.
const UnlockTimeout = 5 * time.Second

// Locker takes locks in a PostgreSQL table through a pgx pool. Make one
// with [New]; it is safe for concurrent use.
type Locker struct {
	pool *pgxpool.Pool
}

// New returns a Locker over pool, with its locks in the table smart_locks,
// which must exist (see [Schema]). Lock names are stored as they are; the
// caller prefixes them (a sessions.LockingStorage puts its key prefix in
// front). It panics if pool is nil.
//
// The context of each call bounds its statement. The pool has no query
// timeout of its own: pass contexts with deadlines (the engine does), so a
// database that hangs fails a refresh instead of holding it.
func New(pool *pgxpool.Pool) *Locker {
	if pool == nil {
		panic("pgxlock: New: nil pool")
	}
	return &Locker{pool: pool}
}

// CreateTable runs [Schema]: it creates the lock table if it is missing.
func (l *Locker) CreateTable(ctx context.Context) error {
	if _, err := l.pool.Exec(ctx, Schema); err != nil {
		return fmt.Errorf("pgxlock: creating the lock table: %w", err)
	}
	return nil
}

// TryLock takes the lock named key for ttl, rounded down to a millisecond
// and at least one. It returns ok false and a nil error when another owner
// holds it. unlock releases the lock only while this owner holds it.
func (l *Locker) TryLock(ctx context.Context, key string, ttl time.Duration) (unlock func(context.Context) error, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("pgxlock: taking a lock: %w", err)
	}
	owner := newOwner()
	tag, err := l.pool.Exec(ctx, lockSQL, key, owner, max(ttl.Milliseconds(), 1))
	if err != nil {
		// The statement may have committed before the failure (a
		// deadline that ran out while waiting for the reply): release
		// what it may have taken, so that nobody waits for a lock without
		// a holder.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = l.release(rctx, key, owner)
		cancel()
		return nil, false, fmt.Errorf("pgxlock: taking a lock: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return nil, false, nil // held by another owner
	}
	return func(ctx context.Context) error { return l.release(ctx, key, owner) }, true, nil
}

// release deletes the lock named key if owner holds it.
func (l *Locker) release(ctx context.Context, key, owner string) error {
	ctx, cancel := context.WithTimeout(ctx, UnlockTimeout)
	defer cancel()
	if _, err := l.pool.Exec(ctx, unlockSQL, key, owner); err != nil {
		return fmt.Errorf("pgxlock: releasing a lock: %w", err)
	}
	return nil
}

// DeleteExpired deletes the rows of locks that ran out without being
// released, left by holders that died, and returns how many it deleted.
// They are harmless (TryLock takes them over) and few; an app may call it
// now and then, from one instance, to keep the table small.
func (l *Locker) DeleteExpired(ctx context.Context) (int64, error) {
	tag, err := l.pool.Exec(ctx, deleteExpiredSQL)
	if err != nil {
		return 0, fmt.Errorf("pgxlock: deleting expired locks: %w", err)
	}
	return tag.RowsAffected(), nil
}

// TakeFrom returns the value that store, a pgxstore over l's pool, keeps
// under token, and deletes it, in one atomic statement; found is false
// when there is none or its expiry has passed. While the lock named lock is
// held (a Take under the lock is taking the record), it takes nothing and
// returns found false. It takes the lock, the record and releases the
// lock in one transaction, so a Take under the lock and TakeFrom exclude
// each other. For another store it returns an error wrapping
// errors.ErrUnsupported and sends nothing.
//
// The pgxstore this module requires keeps its records in the table
// sessions, and its pool is unexported, so TakeFrom reads it by
// reflection; a store of another scs version whose fields differ (one
// that names its table, say) is not supported, and a LockingStorage takes
// its records under the lock.
func (l *Locker) TakeFrom(ctx context.Context, store scs.Store, token, lock string) (value []byte, found bool, err error) {
	if !sameStore(store, l.pool) {
		return nil, false, fmt.Errorf("pgxlock: the store is not a pgxstore over the locker's pool: %w", errors.ErrUnsupported)
	}
	owner := newOwner()
	err = pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		// The lock's row, inserted and deleted in this transaction, is
		// never seen by others, but its key in the primary index makes a
		// concurrent TryLock of lock wait for the commit, when the record
		// is gone; and a lock held already makes the insert do nothing.
		tag, err := tx.Exec(ctx, lockSQL, lock, owner, takeLockTTL.Milliseconds())
		if err != nil || tag.RowsAffected() == 0 {
			return err // held: a take under the lock is taking the record
		}
		err = tx.QueryRow(ctx, takeSQL, token).Scan(&value)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			found = true
		}
		_, err = tx.Exec(ctx, unlockSQL, lock, owner)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("pgxlock: taking a record: %w", err)
	}
	if !found {
		return nil, false, nil
	}
	return value, true, nil
}

// sameStore reports whether store is a pgxstore over pool with its
// records in the table sessions.
func sameStore(store scs.Store, pool *pgxpool.Pool) bool {
	st, ok := store.(*pgxstore.PostgresStore)
	if !ok || st == nil {
		return false
	}
	v := reflect.ValueOf(st).Elem()
	for i := range v.NumField() {
		if strings.Contains(strings.ToLower(v.Type().Field(i).Name), "table") {
			return false // a version that names its table: not ours to guess
		}
	}
	p := v.FieldByName("pool")
	return p.Kind() == reflect.Pointer && p.Pointer() == reflect.ValueOf(pool).Pointer()
}

// newOwner returns 128 random bits naming one holder of a lock.
func newOwner() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var _ core.Locker = (*Locker)(nil)
