package sessions_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/gomodule/redigo/redis"

	"github.com/fhirware/smart/sessions"
)

// The one-line swap: set the session manager's Store, here to Redis, before
// or after the Browser is made. The browser sessions and the SMART records
// both move there.
func ExampleNew_redis() {
	pool := &redis.Pool{
		MaxIdle: 10,
		Dial: func() (redis.Conn, error) {
			return redis.Dial("tcp", "127.0.0.1:6379",
				redis.DialConnectTimeout(2*time.Second),
				redis.DialReadTimeout(2*time.Second),
				redis.DialWriteTimeout(2*time.Second))
		},
	}
	sm := scs.New()
	b := sessions.New(sm)
	sm.Store = redisstore.New(pool)

	mux := http.NewServeMux() // the app's routes, with the SMART launch and callback
	_ = http.ListenAndServe(":8080", b.LoadAndSave(mux))
}

// The Browser's Storage reads the manager's store at every call, so a swap
// made after New still moves the SMART records.
func ExampleNew() {
	sm := scs.New()
	b := sessions.New(sm)

	store := memstore.New()
	sm.Store = store

	ctx := context.Background()
	if err := b.Storage().Set(ctx, "pending:abc", []byte("record"), 10*time.Minute); err != nil {
		fmt.Println(err)
		return
	}
	v, found, _ := store.Find("smart:pending:abc")
	fmt.Println(found, string(v))
	// Output: true record
}

// An app that the EHR shows in an iframe needs a cookie the browser sends
// from inside the EHR's page.
func ExampleEmbeddedInEHR() {
	b := sessions.New(nil, sessions.EmbeddedInEHR())
	c := b.SessionManager().Cookie
	fmt.Println(c.Name, c.SameSite == http.SameSiteNoneMode, c.Secure, c.Partitioned, c.HttpOnly)
	// Output: __Host-smart_session true true true true
}
