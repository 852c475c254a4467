package sessions_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/fhirware/smart/internal/browsertest"
	"github.com/fhirware/smart/sessions"
)

// countingStore is a memstore that counts the browser sessions scs
// commits to it; the SMART records it also keeps, under the "smart:"
// prefix, do not count.
type countingStore struct {
	*memstore.MemStore
	commits atomic.Int64
}

func newCountingStore() *countingStore {
	return &countingStore{MemStore: memstore.NewWithCleanupInterval(0)}
}

func (s *countingStore) Commit(token string, b []byte, expiry time.Time) error {
	if !strings.HasPrefix(token, sessions.DefaultKeyPrefix) {
		s.commits.Add(1)
	}
	return s.MemStore.Commit(token, b, expiry)
}

// inside is the handler inside the Browser's LoadAndSave: on /launch it
// gives the browser a SMART session id if the outer handler has not, and
// it writes what it sees: whether the session is loaded for the Browser,
// the Browser's id, and the app's value the outer handler put (in sm, the
// app's manager).
func inside(b *sessions.Browser, sm *scs.SessionManager) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if r.URL.Path == "/launch" {
			if id, fresh, err := b.LaunchID(ctx); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			} else if fresh {
				b.Launched(ctx, id, 10*time.Minute)
			}
		}
		id, ok := b.ID(ctx)
		if !ok {
			id = "-"
		}
		fmt.Fprintf(w, "loaded=%v id=%s visits=%d", b.Loaded(ctx), id, sm.GetInt(ctx, "app:visits"))
	}
}

// outside is the app's handler inside sm.LoadAndSave, around next: it
// counts the browser's visits in the app's session, except on /quiet, and
// on /launch with launch set it gives the browser its SMART session id
// itself, in a header too.
func outside(b *sessions.Browser, sm *scs.SessionManager, launch bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if r.URL.Path != "/quiet" {
			sm.Put(ctx, "app:visits", sm.GetInt(ctx, "app:visits")+1)
		}
		if launch && r.URL.Path == "/launch" {
			id, _, err := b.LaunchID(ctx)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			b.Launched(ctx, id, 10*time.Minute)
			w.Header().Set("X-Outer-Id", id)
		}
		next.ServeHTTP(w, r)
	})
}

// visit is one request of a browser, with what it got: the body, the
// Set-Cookie headers by cookie name, and the commits each store saw.
type visit struct {
	body    string
	cookies map[string]int
	commits []int64
}

func get1(t *testing.T, c *http.Client, u string, stores ...*countingStore) (visit, *http.Response) {
	t.Helper()
	before := make([]int64, len(stores))
	for i, s := range stores {
		before[i] = s.commits.Load()
	}
	res := get(t, c, u, http.StatusOK)
	v := visit{body: body(t, res), cookies: map[string]int{}}
	for _, c := range res.Cookies() {
		v.cookies[c.Name]++
	}
	for i, s := range stores {
		v.commits = append(v.commits, s.commits.Load()-before[i])
	}
	return v, res
}

// An app that wraps its routes in the LoadAndSave of the manager it gave
// the Browser: inside it, the Browser's LoadAndSave uses the session that
// loaded, so that each response saves the session once, with one
// Set-Cookie, and the Browser reads and writes the very session the app's
// handler does.
func TestLoadAndSaveInsideSameManager(t *testing.T) {
	t.Parallel()
	store := newCountingStore()
	sm := newManager()
	sm.Store = store
	b := sessions.New(sm, sessions.WithCookies(sessions.CookieInsecureHTTP))
	srv := httptest.NewServer(sm.LoadAndSave(outside(b, sm, true, b.LoadAndSave(inside(b, sm)))))
	t.Cleanup(srv.Close)
	browser := browsertest.New()
	t.Cleanup(browser.CloseIdleConnections)
	name := sm.Cookie.Name

	// The outer handler gives the browser its id; the Browser sees it.
	v, res := get1(t, browser, srv.URL+"/launch", store)
	id := res.Header.Get("X-Outer-Id")
	if id == "" || v.body != "loaded=true id="+id+" visits=1" {
		t.Fatalf("the launch: %q, with the outer handler's id %q; want the session loaded, its id and the app's value", v.body, id)
	}
	if v.cookies[name] != 1 || len(res.Header.Values("Set-Cookie")) != 1 || v.commits[0] != 1 {
		t.Fatalf("the launch: Set-Cookie %q, %d commits; want one of each", res.Header.Values("Set-Cookie"), v.commits[0])
	}

	// The next request finds the session the launch saved, once.
	v, res = get1(t, browser, srv.URL+"/page", store)
	if v.body != "loaded=true id="+id+" visits=2" {
		t.Fatalf("the next request: %q", v.body)
	}
	if len(res.Header.Values("Set-Cookie")) != 1 || v.commits[0] != 1 {
		t.Fatalf("the next request: Set-Cookie %q, %d commits; want one of each", res.Header.Values("Set-Cookie"), v.commits[0])
	}

	// A request that changes nothing saves nothing, inside or out.
	v, res = get1(t, browser, srv.URL+"/quiet", store)
	if v.body != "loaded=true id="+id+" visits=2" {
		t.Fatalf("a quiet request: %q", v.body)
	}
	if c := res.Header.Values("Set-Cookie"); len(c) != 0 || v.commits[0] != 0 {
		t.Fatalf("a quiet request: Set-Cookie %q, %d commits; want none", c, v.commits[0])
	}
}

// Inside the LoadAndSave of another manager (the app's own sessions, kept
// apart from SMART's), the Browser loads and saves its own session: two
// cookies, each set once, and one commit in each store. The Browser's id
// lives in its own session only.
func TestLoadAndSaveInsideOtherManager(t *testing.T) {
	t.Parallel()
	appStore, smartStore := newCountingStore(), newCountingStore()
	app := newManager()
	app.Store = appStore
	app.Cookie.Name = "app_session"
	sm := newManager()
	sm.Store = smartStore
	b := sessions.New(sm, sessions.WithCookies(sessions.CookieInsecureHTTP))
	if sm.Cookie.Name == app.Cookie.Name {
		t.Fatal("the two managers share a cookie name")
	}
	srv := httptest.NewServer(app.LoadAndSave(outside(b, app, false, b.LoadAndSave(inside(b, app)))))
	t.Cleanup(srv.Close)
	browser := browsertest.New()
	t.Cleanup(browser.CloseIdleConnections)

	v, res := get1(t, browser, srv.URL+"/launch", appStore, smartStore)
	var (
		loaded bool
		id     string
		visits int
	)
	if _, err := fmt.Sscanf(v.body, "loaded=%t id=%s visits=%d", &loaded, &id, &visits); err != nil || !loaded || id == "-" || visits != 1 {
		t.Fatalf("the launch: %q; want the Browser's session loaded, with an id, and the app's value", v.body)
	}
	if v.cookies[app.Cookie.Name] != 1 || v.cookies[sm.Cookie.Name] != 1 || len(res.Header.Values("Set-Cookie")) != 2 {
		t.Fatalf("the launch: Set-Cookie %q; want the app's cookie and the Browser's, each once", res.Header.Values("Set-Cookie"))
	}
	if v.commits[0] != 1 || v.commits[1] != 1 {
		t.Fatalf("the launch: %d commits of the app's session, %d of the Browser's; want one each", v.commits[0], v.commits[1])
	}

	// The next request: the Browser finds its id in its own session, which
	// it did not change, so only the app's session is saved.
	v, res = get1(t, browser, srv.URL+"/page", appStore, smartStore)
	if v.body != "loaded=true id="+id+" visits=2" {
		t.Fatalf("the next request: %q", v.body)
	}
	if v.cookies[app.Cookie.Name] != 1 || len(res.Header.Values("Set-Cookie")) != 1 || v.commits[0] != 1 || v.commits[1] != 0 {
		t.Fatalf("the next request: Set-Cookie %q, commits %v; want the app's session alone saved", res.Header.Values("Set-Cookie"), v.commits)
	}

	// With the app's cookie alone, the Browser has no id: it is not in the
	// app's session.
	appOnly := browsertest.Fresh(browser)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range browser.Jar.Cookies(u) {
		if c.Name == app.Cookie.Name {
			appOnly.Jar.SetCookies(u, []*http.Cookie{c})
		}
	}
	if v, _ := get1(t, appOnly, srv.URL+"/quiet"); v.body != "loaded=true id=- visits=2" {
		t.Fatalf("with the app's cookie alone: %q; want the app's session and no SMART id", v.body)
	}
}
