package sessions_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/gomodule/redigo/redis"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
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
	sm.ErrorFunc = sessions.StoreErrorFunc(nil) // a failing store answers 503 storage_unavailable
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
func ExampleWithCookies() {
	b := sessions.New(nil, sessions.WithCookies(sessions.CookieEmbeddedInEHR))
	c := b.SessionManager().Cookie
	fmt.Println(c.Name, c.SameSite == http.SameSiteNoneMode, c.Secure, c.Partitioned, c.HttpOnly)
	// Output: __Host-smart_session true true true true
}

// Code that calls the engine itself, such as an adapter for another
// router, uses a Browser for the browser's SMART session id: LaunchID and,
// once the launch succeeded, Launched; RenewAfterCallback before the
// callback stores the launch, against session fixation; ID on the app's
// pages. The engine keeps its records in the Browser's Storage. Here
// against the sandbox EHR of core/smarttest.
func ExampleBrowser() {
	ehr := smarttest.NewServer(smarttest.Options{})
	defer ehr.Close()
	ehr.RegisterClient(smarttest.Client{ID: "my-app"})
	app := httptest.NewUnstartedServer(nil)
	defer app.Close()

	b := sessions.New(nil, sessions.WithCookies(sessions.CookieInsecureHTTP)) // development on localhost only
	engine, err := core.New(core.Config{
		ClientID:          "my-app",
		CallbackURL:       "http://" + app.Listener.Addr().String() + "/callback",
		Issuers:           []core.Issuer{{URL: ehr.FHIRBaseURL()}},
		Storage:           b.Storage(),
		AllowInsecureHTTP: true, // the sandbox speaks plain http
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fail := func(w http.ResponseWriter, err error) {
		var e *core.Error
		if !errors.As(err, &e) {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		http.Error(w, string(e.Code), e.Code.HTTPStatus())
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /launch", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id, _, err := b.LaunchID(ctx)
		if err != nil {
			fail(w, err)
			return
		}
		authorize, err := engine.Launch(ctx, id, r.FormValue("iss"), r.FormValue("launch"))
		if err != nil {
			fail(w, err) // no session saved, no cookie set
			return
		}
		b.Launched(ctx, id, engine.Config().PendingLaunchTTL)
		http.Redirect(w, r, authorize, http.StatusFound)
	})
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id, _ := b.ID(ctx) // none: the engine answers no_launch
		rc, err := engine.Callback(ctx, id, core.CallbackRequest{
			Query: r.URL.Query(),
			BeforeStore: func(ctx context.Context, lc core.LaunchContext) error {
				return b.RenewAfterCallback(ctx, sessions.LaunchUser(lc))
			},
		})
		if err != nil {
			fail(w, err)
			return
		}
		http.Redirect(w, r, "/chart?handle="+url.QueryEscape(rc.Handle()), http.StatusFound)
	})
	mux.HandleFunc("GET /chart", func(w http.ResponseWriter, r *http.Request) {
		id, _ := b.ID(r.Context())
		rc, err := engine.Ready(r.Context(), id, r.FormValue("handle"))
		if err != nil {
			fail(w, err)
			return
		}
		fmt.Fprintf(w, "%s, seen by %s", rc.Patient(), rc.User())
	})
	app.Config.Handler = b.LoadAndSave(mux)
	app.Start()

	_, page, err := smarttest.Browse(nil, ehr.EHRLaunchURL(app.URL+"/launch",
		smarttest.LaunchContext{Patient: "pat-1", FHIRUser: "Practitioner/prac-1"}))
	fmt.Println(page, err)
	// Output: Patient/pat-1, seen by Practitioner/prac-1 <nil>
}
