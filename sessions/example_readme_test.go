package sessions_test

import (
	"context"
	"log/slog"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/sessions"
	"github.com/fhirware/smart/sessions/goredislock"
	"github.com/fhirware/smart/sessions/pgxlock"
)

// readmeConfig is the app's configuration in the README's examples.
func readmeConfig() adapters.Config {
	return adapters.Config{
		Config: core.Config{
			ClientID:    "my-app",
			CallbackURL: "https://app.example.com/fhir/callback",
			Issuers:     []core.Issuer{{URL: "https://ehr.example.com/fhir/r4"}},
		},
		RedirectURL: "/fhir/",
	}
}

// The browser sessions and the SMART records in Redis or Valkey, through a
// session manager of the app's: one line swaps its store. Instances that
// share the store share its lock too, in core.Config.Locker.
func Example_redis() {
	cfg, logger := readmeConfig(), slog.Default()

	client := redis.NewClient(&redis.Options{Addr: "valkey.internal:6379", ContextTimeoutEnabled: true})
	sm := scs.New()
	sm.Store = goredisstore.New(client)            // the sessions and the SMART records, in Redis
	sm.ErrorFunc = sessions.StoreErrorFunc(logger) // a failing store answers 503, as the SMART routes do
	cfg.SessionManager = sm

	cfg.Locker = goredislock.New(client) // with redigo: redislock.New(pool)
}

// The browser sessions and the SMART records in PostgreSQL, with the lock
// of several instances in the same database.
func Example_postgres() {
	cfg, ctx := readmeConfig(), context.Background()
	sm := scs.New()
	sm.ErrorFunc = sessions.StoreErrorFunc(nil)
	cfg.SessionManager = sm

	pool, err := pgxpool.New(ctx, "postgres://app@db.example.com:5432/app")
	if err != nil {
		panic(err)
	}
	sm.Store = pgxstore.New(pool)

	locker := pgxlock.New(pool)
	if err := locker.CreateTable(ctx); err != nil { // or run pgxlock.Schema with your migrations
		panic(err)
	}
	cfg.Locker = locker
}
