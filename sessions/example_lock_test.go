package sessions_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/sessions"
	"github.com/fhirware/smart/sessions/goredislock"
	"github.com/fhirware/smart/sessions/pgxlock"
)

// Several app instances share their sessions in Redis or Valkey: the
// store keeps the records, the locker makes a token refresh happen once
// across the instances. Every instance runs the same code.
func ExampleStorage_WithLocker() {
	client := redis.NewClient(&redis.Options{
		Addr:                  "127.0.0.1:6379",
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
		ContextTimeoutEnabled: true,
	})
	sm := scs.New()
	sm.Store = goredisstore.New(client)
	b := sessions.New(sm)
	st := b.Storage().WithLocker(goredislock.New(client))

	eng, err := core.New(core.Config{ /* client id, URLs, issuers */ })
	if err != nil {
		log.Fatal(err)
	}
	page := func(w http.ResponseWriter, r *http.Request) {
		id, _ := b.Existing(r.Context())
		rc, err := eng.Session(id, st).Ready(r.Context(), r.URL.Query().Get(core.HandleParam))
		if err != nil {
			http.Error(w, "launch the app again", core.HTTPStatus(err))
			return
		}
		_ = rc // read FHIR data for rc.Patient()
	}
	_ = http.ListenAndServe(":8080", b.LoadAndSave(http.HandlerFunc(page)))
}

// The same with PostgreSQL: scs's sessions table and the lock table, in one
// database, over one pool.
func ExampleStorage_WithLocker_postgres() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://app@db/app")
	if err != nil {
		log.Fatal(err)
	}
	locker := pgxlock.New(pool)
	if err := locker.CreateTable(ctx); err != nil {
		log.Fatal(err)
	}
	st := sessions.NewStorage(pgxstore.New(pool)).WithLocker(locker)
	_ = st // eng.Session(id, st) on each request
}
