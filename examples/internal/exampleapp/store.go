package exampleapp

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/internal/pgxbound"
	"github.com/fhirware/smart/sessions"
	"github.com/fhirware/smart/sessions/goredislock"
	"github.com/fhirware/smart/sessions/pgxlock"
)

// pgxSchema creates the table scs's pgxstore keeps sessions in and
// pgxlock's lock table, when they are missing. The advisory lock keeps
// instances that start together from racing on them (which
// pgxlock.Locker.CreateTable, outside the transaction, would not).
var pgxSchema = []string{
	`SELECT pg_advisory_xact_lock(7302615)`,
	`CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, data BYTEA NOT NULL, expiry TIMESTAMPTZ NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS sessions_expiry_idx ON sessions (expiry)`,
	pgxlock.Schema,
}

// A sessionStore is the server that -store names, opened: the scs store
// of the browser sessions and SMART records, and the lock that the app's
// instances share on the same server.
type sessionStore struct {
	// store is nil for "memory": the session manager's own memstore.
	store scs.Store
	// locker is nil for "memory", which one instance alone can use.
	locker core.Locker
	// close releases the connections.
	close func()
}

// lockerName names s's locker for the startup log.
func (s *sessionStore) lockerName() string {
	switch s.locker.(type) {
	case *goredislock.Locker:
		return "goredislock"
	case *pgxlock.Locker:
		return "pgxlock"
	}
	return "none"
}

// openStore opens the server that -store names, with the store and the
// locker over the same connections. The server is pinged, so a wrong
// address fails at start. In PostgreSQL, the sessions table and the lock
// table are created when missing.
func openStore(ctx context.Context, spec string) (*sessionStore, error) {
	if spec == "" || spec == "memory" {
		return &sessionStore{close: func() {}}, nil
	}
	u, err := url.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("-store: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch u.Scheme {
	case "redis", "rediss":
		opts, err := redis.ParseURL(spec)
		if err != nil {
			return nil, fmt.Errorf("-store: %w", err)
		}
		// The context's deadline (the adapters' StoreTimeout) bounds each
		// command, and a hung Redis answers 503 within it; without
		// ContextTimeoutEnabled go-redis waits its own read timeout, and
		// retries.
		opts.ContextTimeoutEnabled = true
		client := redis.NewClient(opts)
		if err := client.Ping(ctx).Err(); err != nil {
			client.Close()
			return nil, fmt.Errorf("-store: redis at %s: %w", opts.Addr, err)
		}
		return &sessionStore{
			store:  goredisstore.New(client),
			locker: goredislock.New(client),
			close:  func() { client.Close() },
		}, nil
	case "postgres", "postgresql":
		cfg, err := pgxpool.ParseConfig(spec)
		if err != nil {
			return nil, fmt.Errorf("-store: %w", err)
		}
		pgxbound.Apply(cfg, sessions.DefaultStoreTimeout)
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("-store: %w", err)
		}
		if err := createTables(ctx, pool); err != nil {
			pool.Close()
			return nil, fmt.Errorf("-store: postgres at %s: %w", u.Host, err)
		}
		locker := pgxlock.New(pool)
		// pgxstore's own cleanup goroutine races with its StopCleanup, so
		// the expired sessions are deleted here, by a goroutine that stops.
		stop := deleteExpired(pool, locker, 5*time.Minute)
		return &sessionStore{
			store:  pgxstore.NewWithCleanupInterval(pool, 0),
			locker: locker,
			close:  func() { stop(); pool.Close() },
		}, nil
	}
	return nil, fmt.Errorf("-store %q: use memory, redis://host:port[/db] or postgres://…", u.Redacted())
}

// createTables runs pgxSchema in one transaction.
func createTables(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	for _, stmt := range pgxSchema {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// deleteExpired deletes the expired rows of the sessions table, and the
// locks that holders which died left behind, every interval, until the
// returned function is called.
func deleteExpired(pool *pgxpool.Pool, locker *pgxlock.Locker, interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				pool.Exec(ctx, `DELETE FROM sessions WHERE expiry < current_timestamp`)
				locker.DeleteExpired(ctx)
			}
		}
	}()
	return func() { cancel(); <-done }
}
