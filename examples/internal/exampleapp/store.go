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
)

// pgxSchema creates the table scs's pgxstore keeps sessions in, when it is
// missing. The advisory lock keeps instances that start together from
// racing on it.
var pgxSchema = []string{
	`SELECT pg_advisory_xact_lock(7302615)`,
	`CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, data BYTEA NOT NULL, expiry TIMESTAMPTZ NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS sessions_expiry_idx ON sessions (expiry)`,
}

// openStore returns the scs store that -store names, and a function that
// releases it, or a nil store for "memory": the session manager's own
// memstore. The server is pinged, so a wrong address fails at start.
func openStore(ctx context.Context, spec string) (scs.Store, func(), error) {
	if spec == "" || spec == "memory" {
		return nil, func() {}, nil
	}
	u, err := url.Parse(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("-store: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch u.Scheme {
	case "redis", "rediss":
		opts, err := redis.ParseURL(spec)
		if err != nil {
			return nil, nil, fmt.Errorf("-store: %w", err)
		}
		client := redis.NewClient(opts)
		if err := client.Ping(ctx).Err(); err != nil {
			client.Close()
			return nil, nil, fmt.Errorf("-store: redis at %s: %w", opts.Addr, err)
		}
		return goredisstore.New(client), func() { client.Close() }, nil
	case "postgres", "postgresql":
		pool, err := pgxpool.New(ctx, spec)
		if err != nil {
			return nil, nil, fmt.Errorf("-store: %w", err)
		}
		if err := createSessionsTable(ctx, pool); err != nil {
			pool.Close()
			return nil, nil, fmt.Errorf("-store: postgres at %s: %w", u.Host, err)
		}
		// pgxstore's own cleanup goroutine races with its StopCleanup, so
		// the expired sessions are deleted here, by a goroutine that stops.
		stop := deleteExpiredSessions(pool, 5*time.Minute)
		return pgxstore.NewWithCleanupInterval(pool, 0), func() { stop(); pool.Close() }, nil
	}
	return nil, nil, fmt.Errorf("-store %q: use memory, redis://host:port[/db] or postgres://…", u.Redacted())
}

// createSessionsTable runs pgxSchema in one transaction.
func createSessionsTable(ctx context.Context, pool *pgxpool.Pool) error {
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

// deleteExpiredSessions deletes the expired rows of the sessions table
// every interval, until the returned function is called.
func deleteExpiredSessions(pool *pgxpool.Pool, interval time.Duration) (stop func()) {
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
			}
		}
	}()
	return func() { cancel(); <-done }
}
