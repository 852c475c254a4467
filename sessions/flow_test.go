package sessions_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/internal/browsertest"
	"github.com/fhirware/smart/sessions"
)

// The whole launch through real HTTP: the EHR opens /fhir/launch, the
// browser comes back to /fhir/callback and lands on /fhir/ with the
// patient in context, with the sessions and SMART records in each store.

func TestFlowMemstore(t *testing.T) {
	t.Parallel()
	testFlow(t, func(t *testing.T) (scs.Store, string) {
		return newManager().Store, sessions.DefaultKeyPrefix
	})
}

func TestFlowRedisstore(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	testFlow(t, func(t *testing.T) (scs.Store, string) {
		_, pool := redigoStore(t, addr)
		prefix := uniquePrefix(t)
		deleteRedisKeys(t, addr, prefix)
		// Sessions and SMART records, all under the test's prefix.
		return redisstore.NewWithPrefix(pool, "scs:session:"+prefix), sessions.DefaultKeyPrefix
	})
}

func TestFlowGoredisstore(t *testing.T) {
	t.Parallel()
	addr := redisAddr(t)
	testFlow(t, func(t *testing.T) (scs.Store, string) {
		_, client := goredisStore(t, addr)
		prefix := uniquePrefix(t)
		deleteRedisKeys(t, addr, prefix)
		return goredisstore.NewWithPrefix(client, "scs:session:"+prefix), sessions.DefaultKeyPrefix
	})
}

func TestFlowPgxstore(t *testing.T) {
	t.Parallel()
	url := postgresURL(t)
	testFlow(t, func(t *testing.T) (scs.Store, string) {
		prefix := uniquePrefix(t)
		deletePostgresRows(t, url, prefix)
		return pgStore(pgPool(t, url)), prefix
	})
}

// testFlow runs a launch with the session manager's store swapped, after
// the Browser was made, for the one newStore returns; the SMART records go
// under keyPrefix.
func testFlow(t *testing.T, newStore func(t *testing.T) (scs.Store, string)) {
	ehr := smarttest.NewServer(smarttest.Options{})
	t.Cleanup(ehr.Close)
	ehr.RegisterClient(smarttest.Client{ID: "app", Auth: smarttest.AuthPublic})

	store, keyPrefix := newStore(t)
	sm := newManager()
	b := sessions.New(sm, sessions.WithCookies(sessions.CookieInsecureHTTP), sessions.WithKeyPrefix(keyPrefix))
	sm.Store = store // the one-line swap

	var app http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { app.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	eng, err := core.New(core.Config{
		ClientID:          "app",
		Scope:             "launch openid fhirUser patient/*.read offline_access",
		CallbackURL:       srv.URL + "/fhir/callback",
		Issuers:           []core.Issuer{{URL: ehr.FHIRBaseURL()}},
		Storage:           b.Storage(),
		AllowInsecureHTTP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	app = newApp(b, eng)

	browser := browsertest.New()
	t.Cleanup(browser.CloseIdleConnections)
	appURL, _ := url.Parse(srv.URL)
	token := func() string {
		for _, c := range browser.Jar.Cookies(appURL) {
			if c.Name == sm.Cookie.Name {
				return c.Value
			}
		}
		return ""
	}

	// 1. The EHR opens the app's launch URL; the app sends the browser to
	// the EHR's authorize endpoint.
	res := get(t, browser, ehr.EHRLaunchURL(srv.URL+"/fhir/launch", smarttest.LaunchContext{Patient: "pat-1", FHIRUser: "Practitioner/prac-1"}), http.StatusFound)
	authorize := res.Header.Get("Location")
	if !strings.HasPrefix(authorize, ehr.AuthorizeURL()) {
		t.Fatalf("launch sent the browser to %q, want the EHR's authorize endpoint", authorize)
	}
	before := token()
	if before == "" {
		t.Fatal("no session cookie after the launch")
	}

	// 2. The EHR approves and sends the browser to the callback, which
	// renews the session token and sends it to the app's page.
	res = get(t, browser, authorize, http.StatusFound)
	callback := res.Header.Get("Location")
	res = get(t, browser, callback, http.StatusFound)
	page := res.Header.Get("Location")
	if !strings.HasPrefix(page, "/fhir/?"+handleParam+"=") || len(page) == len("/fhir/?"+handleParam+"=") {
		t.Fatalf("callback sent the browser to %q", page)
	}
	page = srv.URL + page
	after := token()
	if after == "" || after == before {
		t.Fatalf("the session token did not change across the callback (%q -> %q)", before, after)
	}
	t.Cleanup(func() {
		if err := deleteToken(sm, after); err != nil {
			t.Errorf("cleaning up: %v", err)
		}
	})

	// 3. The app's page has the patient in context, with the handle or
	// without it (the most recent launch).
	if got := body(t, get(t, browser, page, http.StatusOK)); got != "patient=pat-1" {
		t.Fatalf("page = %q", got)
	}
	if got := body(t, get(t, browser, srv.URL+"/fhir/", http.StatusOK)); got != "patient=pat-1" {
		t.Fatalf("page without handle = %q", got)
	}

	// The old token names no session any more: not in the store, and a
	// browser that presents it has no launch.
	if _, found, err := findToken(sm, before); err != nil || found {
		t.Fatalf("the old token is still in the store (found %v, %v)", found, err)
	}
	req, _ := http.NewRequest("GET", page, nil)
	req.AddCookie(&http.Cookie{Name: sm.Cookie.Name, Value: before})
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got := body(t, res)
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the old token got %d %q, want 401", res.StatusCode, got)
	}

	// The callback cannot be replayed: its state was single use.
	res = get(t, browser, callback, http.StatusBadRequest)
	if got := body(t, res); !strings.Contains(got, string(core.CodeInvalidState)) {
		t.Fatalf("replayed callback: %q", got)
	}
}

// handleParam is the query parameter of the app's page that names the
// launch.
const handleParam = "handle"

// newApp is the smallest app: launch, callback and one page, over the
// standard library's mux, with the engine's records in the Browser's
// Storage. The callback renews the session token before the launch is
// stored.
func newApp(b *sessions.Browser, eng *core.Engine) http.Handler {
	fail := func(w http.ResponseWriter, err error) {
		var e *core.Error
		if !errors.As(err, &e) {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		http.Error(w, string(e.Code), e.Code.HTTPStatus())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fhir/launch", func(w http.ResponseWriter, r *http.Request) {
		id, _, err := b.LaunchID(r.Context())
		if err != nil {
			fail(w, err)
			return
		}
		q := r.URL.Query()
		u, err := eng.Launch(r.Context(), id, q.Get("iss"), q.Get("launch"))
		if err != nil {
			fail(w, err) // no session saved, no cookie
			return
		}
		b.Launched(r.Context(), id, eng.Config().PendingLaunchTTL)
		http.Redirect(w, r, u, http.StatusFound)
	})
	mux.HandleFunc("GET /fhir/callback", func(w http.ResponseWriter, r *http.Request) {
		id, _ := b.ID(r.Context())
		rc, err := eng.Callback(r.Context(), id, core.CallbackRequest{
			Query: r.URL.Query(),
			BeforeStore: func(ctx context.Context, lc core.LaunchContext) error {
				return b.RenewAfterCallback(ctx, sessions.LaunchUser(lc))
			},
		})
		if err != nil {
			fail(w, err)
			return
		}
		http.Redirect(w, r, "/fhir/?"+handleParam+"="+url.QueryEscape(rc.Handle()), http.StatusFound)
	})
	mux.HandleFunc("GET /fhir/{$}", func(w http.ResponseWriter, r *http.Request) {
		id, _ := b.ID(r.Context())
		rc, err := eng.Ready(r.Context(), id, r.URL.Query().Get(handleParam))
		if err != nil {
			fail(w, err)
			return
		}
		fmt.Fprintf(w, "patient=%s", rc.Patient().ID)
	})
	return b.LoadAndSave(mux)
}

func get(t *testing.T, c *http.Client, u string, want int) *http.Response {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != want {
		t.Fatalf("GET %s: %d %q, want %d", u, res.StatusCode, b, want)
	}
	res.Body = io.NopCloser(bytes.NewReader(b))
	return res
}

// findToken looks a session token up in the manager's store.
func findToken(sm *scs.SessionManager, token string) ([]byte, bool, error) {
	if s, ok := sm.Store.(scs.CtxStore); ok {
		return s.FindCtx(context.Background(), token)
	}
	return sm.Store.Find(token)
}

// deleteToken deletes a session token from the manager's store.
func deleteToken(sm *scs.SessionManager, token string) error {
	if s, ok := sm.Store.(scs.CtxStore); ok {
		return s.DeleteCtx(context.Background(), token)
	}
	return sm.Store.Delete(token)
}
