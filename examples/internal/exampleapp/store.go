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

// pgxSchema is the table scs's pgxstore keeps sessions in, created when it
// is missing.
var pgxSchema = []string{
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
		for _, stmt := range pgxSchema {
			if _, err := pool.Exec(ctx, stmt); err != nil {
				pool.Close()
				return nil, nil, fmt.Errorf("-store: postgres at %s: %w", u.Host, err)
			}
		}
		store := pgxstore.New(pool)
		return store, func() { store.StopCleanup(); pool.Close() }, nil
	}
	return nil, nil, fmt.Errorf("-store %q: use memory, redis://host:port[/db] or postgres://…", u.Redacted())
}
