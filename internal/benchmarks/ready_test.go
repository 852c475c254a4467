package benchmarks

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/go-chi/chi/v5"
	"github.com/redis/go-redis/v9"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/chiware"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/internal/browsertest"
	"github.com/fhirware/smart/internal/testservers"
	"github.com/fhirware/smart/sessions"
)

// The ready path: a request with the session cookie and a launch handle goes
// through chiware's ready middleware (session load, launch record load,
// token fresh, ReadyClient in the context) to a handler that reads the
// patient id, on the session manager the library makes (sessions.Codec),
// with the store swapped in. The baseline is the same chi route behind
// scs's own LoadAndSave with scs's defaults (its gob codec), reading one
// session value: what an app would write without the library (mw=scs).
// mw=scs-codec is that baseline with sessions.Codec, to show what the
// codec alone gives. All run in-process through ServeHTTP: no network, so
// the figures are the middleware's own cost.

func BenchmarkReadyPath(b *testing.B) {
	// Sub-benchmark names are key=value pairs, so that benchstat can put
	// the two middlewares side by side: benchstat -col /mw.
	b.Run("store=memstore/mw=scs", func(b *testing.B) { benchBaseline(b, memstore.NewWithCleanupInterval(0), nil) })
	b.Run("store=memstore/mw=smart", func(b *testing.B) { benchSmart(b, memstore.NewWithCleanupInterval(0)) })
	b.Run("store=memstore/mw=scs-codec", func(b *testing.B) {
		benchBaseline(b, memstore.NewWithCleanupInterval(0), sessions.Codec{})
	})
	if c := redisClient(b); c != nil {
		b.Run("store=redis/mw=scs", func(b *testing.B) { benchBaseline(b, goredisstore.NewWithPrefix(c, prefix(b)), nil) })
		b.Run("store=redis/mw=smart", func(b *testing.B) { benchSmart(b, goredisstore.NewWithPrefix(c, prefix(b))) })
		b.Run("store=redis/mw=scs-codec", func(b *testing.B) {
			benchBaseline(b, goredisstore.NewWithPrefix(c, prefix(b)), sessions.Codec{})
		})
		// Redis 1 ms away, as across a network: the count of round trips
		// shows in the time.
		far := func(b *testing.B) scs.Store {
			gate := testservers.NewRedisGate(b, os.Getenv("SMART_TEST_REDIS_ADDR"))
			gate.SetLatency(time.Millisecond)
			return goredisstore.NewWithPrefix(testservers.GoredisClient(b, gate.Addr()), prefix(b))
		}
		b.Run("store=redis-1ms/mw=scs", func(b *testing.B) { benchBaseline(b, far(b), nil) })
		b.Run("store=redis-1ms/mw=smart", func(b *testing.B) { benchSmart(b, far(b)) })
		b.Run("store=redis-1ms/mw=scs-codec", func(b *testing.B) { benchBaseline(b, far(b), sessions.Codec{}) })
	}
}

func prefix(b *testing.B) string { return fmt.Sprintf("bench:%d:", time.Now().UnixNano()) }

// redisClient returns a client for SMART_TEST_REDIS_ADDR, or nil when the
// variable is unset (the Redis rows are then left out).
func redisClient(b *testing.B) *redis.Client {
	addr := os.Getenv("SMART_TEST_REDIS_ADDR")
	if addr == "" {
		b.Log("SMART_TEST_REDIS_ADDR is unset: the Redis benchmarks are left out")
		return nil
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	if err := c.Ping(context.Background()).Err(); err != nil {
		b.Fatalf("redis at %s: %v", addr, err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// benchSmart measures the ready path on store, with records sealed by keys
// (Config.StoreKeys) when there are any.
func benchSmart(b *testing.B, store scs.Store, keys ...core.Secret) {
	benchSmartWith(b, store, func(c *core.Config) { c.StoreKeys = keys })
}

// benchSmartWith measures the ready path on store, with the engine's
// Config changed by edit.
func benchSmartWith(b *testing.B, store scs.Store, edit func(*core.Config)) {
	ehr, base, r := readyApp(b, store, edit)

	// One real launch through HTTP, to get the cookie and the handle.
	client := browsertest.New()
	b.Cleanup(client.CloseIdleConnections)
	launch := ehr.EHRLaunchURL(base+"/fhir/launch", smarttest.LaunchContext{Patient: "pat-1", FHIRUser: "Practitioner/prac-1"})
	pageURL, err := browsertest.Launch(b.Context(), client, launch)
	if err != nil {
		b.Fatal(err)
	}
	handle := pageURL.Query().Get(adapters.HandleParam)
	cookies := client.Jar.Cookies(pageURL)
	if len(cookies) == 0 {
		b.Fatal("no session cookie after the launch")
	}

	req := httptest.NewRequest(http.MethodGet, "/fhir/?"+adapters.HandleParam+"="+handle, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	before := ehr.Count(smarttest.EndpointToken) + ehr.Count(smarttest.EndpointFHIR)
	run(b, r, req, "pat-1")
	if after := ehr.Count(smarttest.EndpointToken) + ehr.Count(smarttest.EndpointFHIR); after != before {
		b.Fatalf("the ready path made %d network calls with a fresh token", after-before)
	}
}

// readyApp starts a sandbox EHR and, on an HTTP server at base, a chiware
// app mounted at /fhir over store, on the session manager the adapters
// would make, whose page /fhir/ writes the launched patient's id; edit
// changes the engine's Config. It returns the EHR, base and the app's
// handler.
func readyApp(tb testing.TB, store scs.Store, edit func(*core.Config)) (*smarttest.Server, string, http.Handler) {
	ehr := smarttest.NewServer(smarttest.Options{})
	tb.Cleanup(ehr.Close)
	ehr.RegisterClient(smarttest.Client{ID: "app"})

	app := httptest.NewUnstartedServer(nil)
	base := "http://" + app.Listener.Addr().String()
	sm := sessions.New(nil, sessions.WithCookies(sessions.CookieInsecureHTTP)).SessionManager()
	sm.Store = store
	cfg := core.Config{
		ClientID: "app", CallbackURL: base + "/fhir/callback",
		Issuers: []core.Issuer{{URL: ehr.FHIRBaseURL()}}, AllowInsecureHTTP: true,
	}
	edit(&cfg)
	s := chiware.Smart(adapters.Config{
		Config:         cfg,
		SessionManager: sm,
		RedirectURL:    base + "/fhir/",
		Cookies:        sessions.CookieInsecureHTTP,
	})
	s.Get("/", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, chiware.ReadyClient(r).Patient().ID)
	})
	r := chi.NewRouter()
	r.Mount("/fhir", s)
	app.Config.Handler = r
	app.Start()
	tb.Cleanup(app.Close)
	return ehr, base, r
}

// benchBaseline measures scs's own LoadAndSave on store, with codec, or
// scs's default when it is nil.
func benchBaseline(b *testing.B, store scs.Store, codec scs.Codec) {
	sm := scs.New()
	sm.Store = store
	if codec != nil {
		sm.Codec = codec
	}
	r := chi.NewRouter()
	r.Use(sm.LoadAndSave)
	r.Get("/set", func(w http.ResponseWriter, r *http.Request) { sm.Put(r.Context(), "patient", "pat-1") })
	r.Get("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, sm.GetString(r.Context(), "patient")) })

	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/set", nil))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	run(b, r, req, "pat-1")
}

// run serves req repeatedly and checks every answer.
func run(b *testing.B, h http.Handler, req *http.Request, want string) {
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || rec.Body.String() != want {
			b.Fatalf("status %d body %q", rec.Code, rec.Body.String())
		}
	}
}
