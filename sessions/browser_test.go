package sessions_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/sessions"
)

// newManager is an scs manager whose memstore runs no cleanup goroutine.
func newManager() *scs.SessionManager {
	sm := scs.New()
	sm.Store = memstore.NewWithCleanupInterval(0)
	return sm
}

// serve runs one request through b.LoadAndSave and h, sending cookie (the
// session token) when it is not empty, and returns the response.
func serve(b *sessions.Browser, cookie *http.Cookie, h http.HandlerFunc) *http.Response {
	r := httptest.NewRequest("GET", "/", nil)
	if cookie != nil {
		r.AddCookie(cookie)
	}
	w := httptest.NewRecorder()
	b.LoadAndSave(h).ServeHTTP(w, r)
	return w.Result()
}

// sessionCookie returns the response's cookie named name, or fails.
func sessionCookie(t *testing.T, res *http.Response, name string) *http.Cookie {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s cookie in %q", name, res.Header.Values("Set-Cookie"))
	return nil
}

// startID is a handler that gives the browser a SMART session id as a
// launch that succeeded does (LaunchID, then Launched), and writes the id.
func startID(b *sessions.Browser) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, _, err := b.LaunchID(r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		b.Launched(r.Context(), id, 10*time.Minute)
		io.WriteString(w, id)
	}
}

// writeID writes the SMART session id, or "-" when there is none.
func writeID(b *sessions.Browser) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := b.ID(r.Context())
		if !ok {
			id = "-"
		}
		io.WriteString(w, id)
	}
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNewCookieDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		opts        []sessions.Option
		cookie      string
		secure      bool
		sameSite    string
		partitioned bool
	}{
		{"Default", nil, sessions.CookieName, true, "SameSite=Lax", false},
		{"CookieSecure", []sessions.Option{sessions.WithCookies(sessions.CookieSecure)}, sessions.CookieName, true, "SameSite=Lax", false},
		{"CookieInsecureHTTP", []sessions.Option{sessions.WithCookies(sessions.CookieInsecureHTTP)}, sessions.InsecureCookieName, false, "SameSite=Lax", false},
		{"CookieEmbeddedInEHR", []sessions.Option{sessions.WithCookies(sessions.CookieEmbeddedInEHR)}, sessions.CookieName, true, "SameSite=None", true},
		{"LastModeWins", []sessions.Option{sessions.WithCookies(sessions.CookieInsecureHTTP), sessions.WithCookies(sessions.CookieEmbeddedInEHR)}, sessions.CookieName, true, "SameSite=None", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := sessions.New(nil, tc.opts...)
			if err := b.CheckCookie(); err != nil {
				t.Errorf("CheckCookie on the manager New made: %v", err)
			}
			res := serve(b, nil, startID(b))
			raw := strings.Join(res.Header.Values("Set-Cookie"), "\n")
			c := sessionCookie(t, res, tc.cookie)
			if strings.Contains(strings.ToLower(raw), "domain=") {
				t.Errorf("cookie with a Domain: %s", raw)
			}
			if !c.HttpOnly {
				t.Errorf("cookie not HttpOnly: %s", raw)
			}
			if c.Secure != tc.secure {
				t.Errorf("Secure = %v, want %v: %s", c.Secure, tc.secure, raw)
			}
			if !strings.Contains(raw, tc.sameSite) {
				t.Errorf("cookie without %s: %s", tc.sameSite, raw)
			}
			if got := strings.Contains(raw, "Partitioned"); got != tc.partitioned {
				t.Errorf("Partitioned = %v, want %v: %s", got, tc.partitioned, raw)
			}
			if c.Path != "/" {
				t.Errorf("Path = %q, want /", c.Path)
			}
		})
	}
}

// A manager the app passes keeps its settings but for the cookie
// attributes each mode sets: HttpOnly always; Secure and the __Host- prefix
// unless in CookieInsecureHTTP; SameSite=None and Partitioned in
// CookieEmbeddedInEHR.
func TestNewSetsAppManagerCookie(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		opts        []sessions.Option
		before      string // the manager's Cookie.Name
		cookie      string // the name New gives it
		secure      bool
		sameSite    http.SameSite
		partitioned bool
	}{
		{"Default", nil, "app_session", "__Host-app_session", true, http.SameSiteLaxMode, false},
		{"DefaultPrefixed", nil, "__Host-app", "__Host-app", true, http.SameSiteLaxMode, false},
		{"DefaultPrefixedLowercase", nil, "__host-app", "__host-app", true, http.SameSiteLaxMode, false},
		{"CookieInsecureHTTP", []sessions.Option{sessions.WithCookies(sessions.CookieInsecureHTTP)}, "app_session", "app_session", false, http.SameSiteLaxMode, false},
		{"CookieInsecureHTTPRenamesCookieName", []sessions.Option{sessions.WithCookies(sessions.CookieInsecureHTTP)}, sessions.CookieName, sessions.InsecureCookieName, false, http.SameSiteLaxMode, false},
		{"DefaultInsecureName", nil, sessions.InsecureCookieName, sessions.CookieName, true, http.SameSiteLaxMode, false},
		{"CookieEmbeddedInEHR", []sessions.Option{sessions.WithCookies(sessions.CookieEmbeddedInEHR)}, "app_session", "__Host-app_session", true, http.SameSiteNoneMode, true},
		{"LastModeWins", []sessions.Option{sessions.WithCookies(sessions.CookieInsecureHTTP), sessions.WithCookies(sessions.CookieEmbeddedInEHR)}, "app_session", "__Host-app_session", true, http.SameSiteNoneMode, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sm := newManager() // scs.New: Secure false, SameSite=Lax, HttpOnly
			sm.Cookie.Name = tc.before
			sm.Cookie.HttpOnly = false
			sm.IdleTimeout = time.Hour
			b := sessions.New(sm, tc.opts...)
			if b.SessionManager() != sm {
				t.Fatal("SessionManager is not the manager passed to New")
			}
			if sm.IdleTimeout != time.Hour {
				t.Error("New changed a setting that is not the cookie's")
			}
			if err := b.CheckCookie(); err != nil {
				t.Errorf("CheckCookie: %v", err)
			}
			res := serve(b, nil, startID(b))
			raw := strings.Join(res.Header.Values("Set-Cookie"), "\n")
			c := sessionCookie(t, res, tc.cookie)
			if !c.HttpOnly || c.Secure != tc.secure || c.SameSite != tc.sameSite || c.Partitioned != tc.partitioned || c.Path != "/" {
				t.Errorf("cookie %s: want HttpOnly, Path=/, Secure %v, SameSite %v, Partitioned %v", raw, tc.secure, tc.sameSite, tc.partitioned)
			}
		})
	}
}

// CheckCookie refuses what a __Host- cookie may not have, a prefix without
// Secure, and a cookie the page's scripts can read; its error names the
// manager's field.
func TestCheckCookie(t *testing.T) {
	t.Parallel()
	insecure := []sessions.Option{sessions.WithCookies(sessions.CookieInsecureHTTP)}
	for _, tc := range []struct {
		name   string
		opts   []sessions.Option
		before func(*scs.SessionManager) // before New
		after  func(*scs.SessionManager) // after New
		field  string                    // "" when it passes
	}{
		{name: "Default"},
		{name: "Domain", before: func(sm *scs.SessionManager) { sm.Cookie.Domain = "example.org" }, field: "Cookie.Domain"},
		{name: "DomainEmbedded", opts: []sessions.Option{sessions.WithCookies(sessions.CookieEmbeddedInEHR)}, before: func(sm *scs.SessionManager) { sm.Cookie.Domain = "example.org" }, field: "Cookie.Domain"},
		{name: "Path", before: func(sm *scs.SessionManager) { sm.Cookie.Path = "/fhir" }, field: "Cookie.Path"},
		{name: "EmptyPath", before: func(sm *scs.SessionManager) { sm.Cookie.Path = "" }, field: "Cookie.Path"},
		{name: "DomainInsecure", opts: insecure, before: func(sm *scs.SessionManager) { sm.Cookie.Domain = "example.org" }},
		{name: "HostPrefixInsecure", opts: insecure, before: func(sm *scs.SessionManager) { sm.Cookie.Name = "__Host-app" }, field: "Cookie.Name"},
		{name: "SecurePrefixInsecure", opts: insecure, before: func(sm *scs.SessionManager) { sm.Cookie.Name = "__secure-app" }, field: "Cookie.Name"},
		{name: "PrefixRemovedAfterNew", after: func(sm *scs.SessionManager) { sm.Cookie.Name = "app" }, field: "Cookie.Name"},
		{name: "SecureOffAfterNew", after: func(sm *scs.SessionManager) { sm.Cookie.Secure = false }, field: "Cookie.Secure"},
		{name: "HttpOnlyOffAfterNew", opts: insecure, after: func(sm *scs.SessionManager) { sm.Cookie.HttpOnly = false }, field: "Cookie.HttpOnly"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sm := newManager()
			if tc.before != nil {
				tc.before(sm)
			}
			b := sessions.New(sm, tc.opts...)
			if tc.after != nil {
				tc.after(sm)
			}
			err := b.CheckCookie()
			var ce *sessions.CookieError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("CheckCookie: %v", err)
			case tc.field == "":
			case !errors.As(err, &ce) || ce.Field != tc.field:
				t.Fatalf("CheckCookie = %v; want a *CookieError for %s", err, tc.field)
			case !strings.Contains(err.Error(), tc.field) || ce.Reason == "":
				t.Fatalf("CheckCookie = %q; want the field and a reason", err)
			}
		})
	}
}

// ID finds no id in a new browser's session, and sets no cookie for
// asking; after a launch it finds the launch's id on every request, and
// LaunchID gives that id again, not a fresh one.
func TestID(t *testing.T) {
	t.Parallel()
	b := sessions.New(newManager(), sessions.WithCookies(sessions.CookieInsecureHTTP))
	name := b.SessionManager().Cookie.Name

	res := serve(b, nil, writeID(b))
	if got := body(t, res); got != "-" {
		t.Fatalf("a new browser has id %q", got)
	}
	if len(res.Cookies()) != 0 {
		t.Fatalf("ID alone set a cookie: %q", res.Header.Values("Set-Cookie"))
	}

	res = serve(b, nil, startID(b))
	id := body(t, res)
	if raw, err := base64.RawURLEncoding.DecodeString(id); err != nil || len(raw) < 32 {
		t.Fatalf("id %q: %d bytes, %v; want 256 bits, base64url", id, len(raw), err)
	}
	cookie := sessionCookie(t, res, name)

	if got := body(t, serve(b, cookie, writeID(b))); got != id {
		t.Fatalf("ID on the next request = %q, want %q", got, id)
	}
	if got := body(t, serve(b, cookie, launchWith(b, time.Minute, false))); got != id+" false" {
		t.Fatalf("LaunchID on the next request = %q, want %q", got, id+" false")
	}
	if other := body(t, serve(b, nil, startID(b))); other == id {
		t.Fatal("two browsers got the same id")
	}
}

// launchWith is a launch's use of the session: LaunchID, then Launched
// only when the launch succeeds (ok). It writes the id and whether it was
// fresh.
func launchWith(b *sessions.Browser, pendingTTL time.Duration, ok bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, fresh, err := b.LaunchID(r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if ok {
			b.Launched(r.Context(), id, pendingTTL)
		}
		fmt.Fprintf(w, "%s %v", id, fresh)
	}
}

// deadline loads the session of cookie from sm's store and returns its
// deadline.
func deadline(t *testing.T, sm *scs.SessionManager, cookie *http.Cookie) time.Time {
	t.Helper()
	ctx, err := sm.Load(t.Context(), cookie.Value)
	if err != nil {
		t.Fatal(err)
	}
	if sm.Token(ctx) == "" {
		t.Fatal("the session is not in the store")
	}
	return sm.Deadline(ctx)
}

// near fails unless got is within a few seconds of want.
func near(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if d := got.Sub(want); d < -3*time.Second || d > 3*time.Second {
		t.Errorf("%s = %s, want about %s", what, got.Format(time.RFC3339), want.Format(time.RFC3339))
	}
}

// A launch that fails leaves no session: LaunchID's fresh id is not saved,
// no cookie is set and the store stays empty. A session that has an id
// keeps it.
func TestLaunchIDFailedLaunch(t *testing.T) {
	t.Parallel()
	sm := newManager()
	store := sm.Store.(*memstore.MemStore)
	b := sessions.New(sm, sessions.WithCookies(sessions.CookieInsecureHTTP))

	res := serve(b, nil, launchWith(b, 10*time.Minute, false))
	id, fresh, _ := strings.Cut(body(t, res), " ")
	if raw, err := base64.RawURLEncoding.DecodeString(id); err != nil || len(raw) < 32 || fresh != "true" {
		t.Fatalf("LaunchID = %q, %s: want a fresh 256-bit base64url id", id, fresh)
	}
	if c := res.Header.Values("Set-Cookie"); len(c) != 0 {
		t.Fatalf("a failed launch set a cookie: %q", c)
	}
	if all, _ := store.All(); len(all) != 0 {
		t.Fatalf("a failed launch stored %d sessions", len(all))
	}
	if again, _, _ := strings.Cut(body(t, serve(b, nil, launchWith(b, 10*time.Minute, false))), " "); again == id {
		t.Fatal("LaunchID gave the same fresh id twice")
	}

	res = serve(b, nil, startID(b))
	id = body(t, res)
	cookie := sessionCookie(t, res, sm.Cookie.Name)
	res = serve(b, cookie, launchWith(b, 10*time.Minute, false))
	if got := body(t, res); got != id+" false" {
		t.Fatalf("LaunchID in a session with id %q = %q", id, got)
	}
	if c := res.Header.Values("Set-Cookie"); len(c) != 0 {
		t.Fatalf("a failed launch in an existing session set a cookie: %q", c)
	}
}

// A session that a launch creates lives the pending launch's time, not the
// manager's Lifetime; Renew, after the callback, gives it the Lifetime, and
// a later launch does not shorten that.
func TestLaunchedDeadline(t *testing.T) {
	t.Parallel()
	const pending = 10 * time.Minute
	sm := newManager()
	b := sessions.New(sm, sessions.WithCookies(sessions.CookieInsecureHTTP))

	res := serve(b, nil, launchWith(b, pending, true))
	id, _, _ := strings.Cut(body(t, res), " ")
	cookie := sessionCookie(t, res, sm.Cookie.Name)
	if cookie.MaxAge < int(pending.Seconds())-3 || cookie.MaxAge > int(pending.Seconds())+1 {
		t.Errorf("the launch's cookie has Max-Age %d, want about %d", cookie.MaxAge, int(pending.Seconds()))
	}
	near(t, "the cookie's Expires", cookie.Expires, time.Now().Add(pending))
	near(t, "the stored session's deadline", deadline(t, sm, cookie), time.Now().Add(pending))
	if got := body(t, serve(b, cookie, writeID(b))); got != id {
		t.Fatalf("the launch's session has id %q, want %q", got, id)
	}

	// A second launch later in the same session extends it to its own
	// pending launch's time.
	res = serve(b, cookie, launchWith(b, 2*pending, true))
	if got := body(t, res); got != id+" false" {
		t.Fatalf("a second launch got %q, want the session's id", got)
	}
	near(t, "the deadline after a later launch", deadline(t, sm, cookie), time.Now().Add(2*pending))

	// The callback renews the token and gives the session its Lifetime.
	res = serve(b, cookie, func(w http.ResponseWriter, r *http.Request) {
		if err := b.Renew(r.Context()); err != nil {
			t.Errorf("Renew: %v", err)
		}
	})
	cookie = sessionCookie(t, res, sm.Cookie.Name)
	near(t, "the deadline after Renew", deadline(t, sm, cookie), time.Now().Add(sm.Lifetime))
	if cookie.MaxAge < int(sm.Lifetime.Seconds())-3 {
		t.Errorf("the renewed cookie has Max-Age %d, want about %d", cookie.MaxAge, int(sm.Lifetime.Seconds()))
	}

	// A launch in a session with a finished one keeps its deadline, and
	// so leaves the session and its cookie unchanged.
	res = serve(b, cookie, launchWith(b, pending, true))
	if c := res.Header.Values("Set-Cookie"); len(c) != 0 {
		t.Errorf("a launch in a session with a finished one changed the cookie: %q", c)
	}
	near(t, "the deadline after a launch in a finished session", deadline(t, sm, cookie), time.Now().Add(sm.Lifetime))
}

// A session the app put its own values in before the launch, in the same
// request, is the app's: the launch does not shorten it.
func TestLaunchedKeepsAppSession(t *testing.T) {
	t.Parallel()
	sm := newManager()
	b := sessions.New(sm, sessions.WithCookies(sessions.CookieInsecureHTTP))
	res := serve(b, nil, func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "app:cart", "3 items")
		launchWith(b, 10*time.Minute, true)(w, r)
	})
	near(t, "the deadline", deadline(t, sm, sessionCookie(t, res, sm.Cookie.Name)), time.Now().Add(sm.Lifetime))
}

// Renew changes the scs token, keeps the SMART session id, and the old
// token no longer loads the session.
func TestRenew(t *testing.T) {
	t.Parallel()
	b := sessions.New(newManager(), sessions.WithCookies(sessions.CookieInsecureHTTP))
	name := b.SessionManager().Cookie.Name

	res := serve(b, nil, startID(b))
	id, old := body(t, res), sessionCookie(t, res, name)

	res = serve(b, old, func(w http.ResponseWriter, r *http.Request) {
		if err := b.Renew(r.Context()); err != nil {
			t.Errorf("Renew: %v", err)
		}
		writeID(b)(w, r)
	})
	if got := body(t, res); got != id {
		t.Fatalf("id after Renew = %q, want %q", got, id)
	}
	renewed := sessionCookie(t, res, name)
	if renewed.Value == old.Value {
		t.Fatal("Renew kept the token")
	}
	if got := body(t, serve(b, renewed, writeID(b))); got != id {
		t.Fatalf("the new token loads id %q, want %q", got, id)
	}
	if got := body(t, serve(b, old, writeID(b))); got != "-" {
		t.Fatalf("the old token still loads id %q", got)
	}
}

// The Browser's Storage writes into the manager's store under its prefix,
// and follows a swap of the store.
func TestBrowserStorage(t *testing.T) {
	t.Parallel()
	sm := newManager()
	b := sessions.New(sm, sessions.WithKeyPrefix("app1:"))
	swapped := memstore.NewWithCleanupInterval(0)
	sm.Store = swapped
	mustSet(t, b.Storage(), "k", []byte("v"), time.Minute)
	if v, found, _ := swapped.Find("app1:k"); !found || string(v) != "v" {
		t.Fatalf("store holds %q, %v under app1:k", v, found)
	}
}

// A failing store is answered 503 with the code storage_unavailable, as
// JSON when the request's Accept asks for it and as text otherwise, both
// under the Browser's LoadAndSave on a manager New made and under the
// app's own sm.LoadAndSave with ErrorFunc set to StoreErrorFunc (the
// recipe for a manager of the app's). The body says nothing of the
// failure, which is logged; a redirect the handler began is dropped, and
// no cookie names the session that could not be saved.
func TestStoreErrorFunc(t *testing.T) {
	t.Parallel()
	const secret = "dial tcp 10.0.0.7:6379: connection refused"
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	b := sessions.New(nil, sessions.WithLogger(logger))
	b.SessionManager().Store = failingStore{errors.New(secret)}
	own := newManager()
	own.Store = failingStore{errors.New(secret)}
	own.ErrorFunc = sessions.StoreErrorFunc(logger)

	// save puts a value in the session and answers with a redirect, whose
	// header is where scs saves the session.
	save := func(sm *scs.SessionManager) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			sm.Put(r.Context(), "app:cart", "3 items")
			w.Header().Set("Location", "/next")
			w.WriteHeader(http.StatusFound)
		}
	}
	reached := func(w http.ResponseWriter, r *http.Request) {
		t.Error("the handler ran after the session failed to load")
	}
	for _, m := range []struct {
		name string
		sm   *scs.SessionManager
		wrap func(http.Handler) http.Handler
	}{
		{"Browser", b.SessionManager(), b.LoadAndSave},
		{"AppManager", own, own.LoadAndSave},
	} {
		for _, op := range []struct {
			name    string
			cookie  bool // the request carries a session token, which is loaded
			handler http.HandlerFunc
		}{
			{"Load", true, reached},
			{"Commit", false, save(m.sm)},
		} {
			for _, accept := range []string{"", "application/json"} {
				name := m.name + "/" + op.name + "/Text"
				if accept != "" {
					name = m.name + "/" + op.name + "/JSON"
				}
				t.Run(name, func(t *testing.T) {
					r := httptest.NewRequest("GET", "/", nil)
					if op.cookie {
						r.AddCookie(&http.Cookie{Name: m.sm.Cookie.Name, Value: "token"})
					}
					if accept != "" {
						r.Header.Set("Accept", accept)
					}
					w := httptest.NewRecorder()
					m.wrap(op.handler).ServeHTTP(w, r)
					checkStoreError(t, w.Result(), accept != "")
				})
			}
		}
	}
	if got := logs.String(); !strings.Contains(got, "10.0.0.7") || !strings.Contains(got, "storage_unavailable") {
		t.Errorf("the failure was not logged with its code: %q", got)
	}
}

// checkStoreError checks StoreErrorFunc's answer.
func checkStoreError(t *testing.T, res *http.Response, wantJSON bool) {
	t.Helper()
	got := body(t, res)
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", res.StatusCode)
	}
	if strings.Contains(got, "10.0.0.7") || strings.Contains(got, "refused") {
		t.Errorf("the body shows the failure: %q", got)
	}
	if loc := res.Header.Get("Location"); loc != "" {
		t.Errorf("Location %q on a 503", loc)
	}
	if c := res.Header.Values("Set-Cookie"); len(c) != 0 {
		t.Errorf("a 503 set a cookie: %q", c)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	ct := res.Header.Get("Content-Type")
	if !wantJSON {
		if !strings.HasPrefix(ct, "text/plain") || !strings.Contains(got, "storage_unavailable") {
			t.Errorf("Content-Type %q, body %q; want text naming storage_unavailable", ct, got)
		}
		return
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal([]byte(got), &e); err != nil || !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, body %q (%v); want JSON", ct, got, err)
	}
	if e.Error != "storage_unavailable" || e.Description == "" {
		t.Errorf("JSON %+v; want error storage_unavailable with a description", e)
	}
}

// Renew and RenewAfterCallback report a failing store as
// storage_unavailable: RenewAfterCallback when it writes the forward of the
// old token, and when it renews without one.
func TestRenewStoreFailure(t *testing.T) {
	t.Parallel()
	sm := newManager()
	b := sessions.New(sm, sessions.WithCookies(sessions.CookieInsecureHTTP))
	res := serve(b, nil, startID(b))
	cookie := sessionCookie(t, res, sm.Cookie.Name)
	ctx, err := sm.Load(t.Context(), cookie.Value)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.ID(ctx); !ok {
		t.Fatal("the loaded session has no SMART session id")
	}
	sm.Store = failingStore{errors.New("gone")}
	for name, err := range map[string]error{
		"Renew":                      b.Renew(ctx),
		"RenewAfterCallback":         b.RenewAfterCallback(ctx, sessions.LaunchUser(core.LaunchContext{AuthIssuer: "https://ehr.example", Subject: "user-1"})),
		"RenewAfterCallback no user": b.RenewAfterCallback(ctx, ""),
	} {
		if !errors.Is(err, core.CodeStorageUnavailable) {
			t.Errorf("%s = %v; want storage_unavailable", name, err)
		}
	}
}

func TestCookieModeString(t *testing.T) {
	t.Parallel()
	for m, want := range map[sessions.CookieMode]string{
		sessions.CookieSecure:        "CookieSecure",
		sessions.CookieEmbeddedInEHR: "CookieEmbeddedInEHR",
		sessions.CookieInsecureHTTP:  "CookieInsecureHTTP",
		sessions.CookieMode(7):       "CookieMode(7)",
	} {
		if got := m.String(); got != want {
			t.Errorf("CookieMode %d = %q, want %q", int(m), got, want)
		}
	}
}
