package sessions_test

import (
	"bytes"
	"encoding/base64"
	"errors"
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

// startID is a handler that gets or makes the SMART session id and writes it.
func startID(b *sessions.Browser) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := b.ID(r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		io.WriteString(w, id)
	}
}

// existingID writes the SMART session id, or "-" when there is none.
func existingID(b *sessions.Browser) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := b.Existing(r.Context())
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
		secure      bool
		sameSite    string
		partitioned bool
	}{
		{"Default", nil, true, "SameSite=Lax", false},
		{"AllowInsecureHTTP", []sessions.Option{sessions.AllowInsecureHTTP()}, false, "SameSite=Lax", false},
		{"EmbeddedInEHR", []sessions.Option{sessions.EmbeddedInEHR()}, true, "SameSite=None", true},
		{"EmbeddedInEHRWinsOverInsecure", []sessions.Option{sessions.AllowInsecureHTTP(), sessions.EmbeddedInEHR()}, true, "SameSite=None", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := sessions.New(nil, tc.opts...)
			res := serve(b, nil, startID(b))
			raw := strings.Join(res.Header.Values("Set-Cookie"), "\n")
			c := sessionCookie(t, res, sessions.CookieName)
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

// A manager the app passes keeps its settings; only the options named
// change it.
func TestNewKeepsAppManager(t *testing.T) {
	t.Parallel()
	sm := newManager()
	sm.Cookie.Name = "app_session"
	sm.Cookie.Secure = true
	b := sessions.New(sm, sessions.EmbeddedInEHR())
	if b.SessionManager() != sm {
		t.Fatal("SessionManager is not the manager passed to New")
	}
	if sm.Cookie.Name != "app_session" || sm.Cookie.SameSite != http.SameSiteNoneMode || !sm.Cookie.Partitioned {
		t.Fatalf("cookie settings %+v", sm.Cookie)
	}
	res := serve(b, nil, startID(b))
	sessionCookie(t, res, "app_session")
}

func TestID(t *testing.T) {
	t.Parallel()
	b := sessions.New(newManager(), sessions.AllowInsecureHTTP())
	name := b.SessionManager().Cookie.Name

	res := serve(b, nil, existingID(b))
	if got := body(t, res); got != "-" {
		t.Fatalf("a new browser has id %q", got)
	}
	if len(res.Cookies()) != 0 {
		t.Fatalf("Existing alone set a cookie: %q", res.Header.Values("Set-Cookie"))
	}

	res = serve(b, nil, startID(b))
	id := body(t, res)
	if raw, err := base64.RawURLEncoding.DecodeString(id); err != nil || len(raw) < 16 {
		t.Fatalf("id %q: %d bytes, %v; want >= 128 bits, base64url", id, len(raw), err)
	}
	cookie := sessionCookie(t, res, name)

	if got := body(t, serve(b, cookie, startID(b))); got != id {
		t.Fatalf("ID on the next request = %q, want %q", got, id)
	}
	if got := body(t, serve(b, cookie, existingID(b))); got != id {
		t.Fatalf("Existing on the next request = %q, want %q", got, id)
	}
	if other := body(t, serve(b, nil, startID(b))); other == id {
		t.Fatal("two browsers got the same id")
	}
}

// Renew changes the scs token, keeps the SMART session id, and the old
// token no longer loads the session.
func TestRenew(t *testing.T) {
	t.Parallel()
	b := sessions.New(newManager(), sessions.AllowInsecureHTTP())
	name := b.SessionManager().Cookie.Name

	res := serve(b, nil, startID(b))
	id, old := body(t, res), sessionCookie(t, res, name)

	res = serve(b, old, func(w http.ResponseWriter, r *http.Request) {
		if err := b.Renew(r.Context()); err != nil {
			t.Errorf("Renew: %v", err)
		}
		existingID(b)(w, r)
	})
	if got := body(t, res); got != id {
		t.Fatalf("id after Renew = %q, want %q", got, id)
	}
	renewed := sessionCookie(t, res, name)
	if renewed.Value == old.Value {
		t.Fatal("Renew kept the token")
	}
	if got := body(t, serve(b, renewed, existingID(b))); got != id {
		t.Fatalf("the new token loads id %q, want %q", got, id)
	}
	if got := body(t, serve(b, old, existingID(b))); got != "-" {
		t.Fatalf("the old token still loads id %q", got)
	}
}

func TestDestroy(t *testing.T) {
	t.Parallel()
	b := sessions.New(newManager(), sessions.AllowInsecureHTTP())
	name := b.SessionManager().Cookie.Name
	res := serve(b, nil, startID(b))
	cookie := sessionCookie(t, res, name)

	res = serve(b, cookie, func(w http.ResponseWriter, r *http.Request) {
		if err := b.Destroy(r.Context()); err != nil {
			t.Errorf("Destroy: %v", err)
		}
		existingID(b)(w, r)
	})
	if got := body(t, res); got != "-" {
		t.Fatalf("id after Destroy = %q", got)
	}
	if c := sessionCookie(t, res, name); c.MaxAge >= 0 {
		t.Fatalf("Destroy did not clear the cookie: %+v", c)
	}
	if got := body(t, serve(b, cookie, existingID(b))); got != "-" {
		t.Fatalf("the destroyed token still loads id %q", got)
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

// A store failing under LoadAndSave answers 503, with nothing of the
// failure in the body, and logs it.
func TestStoreErrorFunc(t *testing.T) {
	t.Parallel()
	const secret = "dial tcp 10.0.0.7:6379: connection refused"
	var logs bytes.Buffer
	b := sessions.New(nil, sessions.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	b.SessionManager().Store = failingStore{errors.New(secret)}

	check := func(what string, res *http.Response) {
		t.Helper()
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d, want 503", what, res.StatusCode)
		}
		if got := body(t, res); strings.Contains(got, "10.0.0.7") || strings.Contains(got, "refused") {
			t.Errorf("%s: body shows the failure: %q", what, got)
		}
		if loc := res.Header.Get("Location"); loc != "" {
			t.Errorf("%s: Location %q on a 503", what, loc)
		}
	}
	// Loading a session with a token.
	check("load", serve(b, &http.Cookie{Name: sessions.CookieName, Value: "token"}, startID(b)))
	// Saving a new session, after the handler ran.
	check("commit", serve(b, nil, func(w http.ResponseWriter, r *http.Request) {
		b.ID(r.Context())
		http.Redirect(w, r, "/next", http.StatusFound)
	}))
	if !strings.Contains(logs.String(), "10.0.0.7") {
		t.Errorf("the failure was not logged: %q", logs.String())
	}
}

// Renew and Destroy report a failing store as storage_unavailable.
func TestRenewDestroyStoreFailure(t *testing.T) {
	t.Parallel()
	sm := newManager()
	b := sessions.New(sm, sessions.AllowInsecureHTTP())
	res := serve(b, nil, startID(b))
	cookie := sessionCookie(t, res, sm.Cookie.Name)
	ctx, err := sm.Load(t.Context(), cookie.Value)
	if err != nil {
		t.Fatal(err)
	}
	sm.Store = failingStore{errors.New("gone")}
	for name, err := range map[string]error{"Renew": b.Renew(ctx), "Destroy": b.Destroy(ctx)} {
		if !errors.Is(err, core.CodeStorageUnavailable) {
			t.Errorf("%s = %v; want storage_unavailable", name, err)
		}
	}
}
