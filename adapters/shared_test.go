package adapters_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/sessions"
)

// countingStore counts the browser sessions scs commits to its store; the
// SMART records it also keeps, under the "smart:" prefix, do not count.
type countingStore struct {
	*memstore.MemStore
	commits atomic.Int64
}

func (s *countingStore) Commit(token string, b []byte, expiry time.Time) error {
	if !strings.HasPrefix(token, sessions.DefaultKeyPrefix) {
		s.commits.Add(1)
	}
	return s.MemStore.Commit(token, b, expiry)
}

// recorder remembers each response a browser got, with the store commits
// its request made.
type recorder struct {
	next  http.RoundTripper
	store *countingStore

	mu    sync.Mutex
	steps []step
}

type step struct {
	url       string
	status    int
	setCookie []string
	commits   int64
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	before := r.store.commits.Load()
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.steps = append(r.steps, step{url: req.URL.String(), status: resp.StatusCode,
		setCookie: resp.Header.Values("Set-Cookie"), commits: r.store.commits.Load() - before})
	r.mu.Unlock()
	return resp, nil
}

// sharedApp is an app that shares its own scs manager with the SMART
// routes and wraps every route in the manager's own LoadAndSave, as an app
// with sessions of its own does.
type sharedApp struct {
	ehr     *smarttest.Server
	srv     *httptest.Server
	store   *countingStore
	browser *http.Client
	rec     *recorder
}

func newSharedApp(t *testing.T, extra func(*adapters.Config)) *sharedApp {
	t.Helper()
	ehr := smarttest.NewServer(smarttest.Options{})
	t.Cleanup(ehr.Close)
	ehr.RegisterClient(smarttest.Client{ID: "my-app"})
	srv := httptest.NewUnstartedServer(nil)
	t.Cleanup(srv.Close)
	base := "http://" + srv.Listener.Addr().String()

	store := &countingStore{MemStore: memstore.NewWithCleanupInterval(0)}
	sm := scs.New()
	sm.Store = store
	sm.ErrorFunc = sessions.StoreErrorFunc(nil)
	cfg := adapters.Config{
		Config: core.Config{
			ClientID:          "my-app",
			CallbackURL:       base + "/fhir/callback",
			Issuers:           []core.Issuer{{URL: ehr.FHIRBaseURL()}},
			AllowInsecureHTTP: true,
		},
		SessionManager: sm,
		RedirectURL:    "/fhir/",
		Cookies:        sessions.CookieInsecureHTTP,
	}
	if extra != nil {
		extra(&cfg)
	}
	s, err := adapters.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "app:visits", sm.GetInt(r.Context(), "app:visits")+1) // the app's own session data
		rc := adapters.FromContext(r.Context())
		var p struct{ ID string }
		if err := rc.FHIR().Read(r.Context(), rc.Patient().String(), &p); err != nil {
			adapters.Error(w, r, err)
			return
		}
		w.Write([]byte("patient " + p.ID))
	})
	mux := http.NewServeMux()
	mux.Handle("/fhir/", http.StripPrefix("/fhir", s.Handler(page)))
	// The app's own LoadAndSave, outside the mount, and between them a
	// middleware whose ResponseWriter hides the one it wraps (no Unwrap),
	// as some logging and compression middleware do.
	srv.Config.Handler = sm.LoadAndSave(opaque(mux))
	srv.Start()

	jar, _ := cookiejar.New(nil)
	rec := &recorder{next: http.DefaultTransport, store: store}
	return &sharedApp{ehr: ehr, srv: srv, store: store, rec: rec,
		browser: &http.Client{Jar: jar, Transport: rec}}
}

// opaque wraps each response in a ResponseWriter that does not say what it
// wraps.
func opaque(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(struct{ http.ResponseWriter }{w}, r)
	})
}

func (a *sharedApp) launch(t *testing.T) string {
	t.Helper()
	resp, err := a.browser.Get(a.ehr.EHRLaunchURL(a.srv.URL+"/fhir/launch", smarttest.LaunchContext{Patient: "pat-1"}))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the launch ended with %d: %.300s", resp.StatusCode, b)
	}
	return string(b)
}

// An app that wraps the SMART routes in its own sm.LoadAndSave (of the
// manager it gave as Config.SessionManager) gets one Set-Cookie and one
// save per response: the SMART side uses the session that loaded instead
// of loading and saving it again; and the app's own session data and the
// launch live in that one session.
func TestSharedManagerSavesOnce(t *testing.T) {
	a := newSharedApp(t, nil)
	if body := a.launch(t); body != "patient pat-1" {
		t.Fatalf("the page after the launch = %q", body)
	}
	resp, err := a.browser.Get(a.srv.URL + "/fhir/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	var ours int
	for _, s := range a.rec.steps {
		if !strings.HasPrefix(s.url, a.srv.URL) {
			continue // the EHR's responses
		}
		ours++
		if len(s.setCookie) > 1 {
			t.Errorf("%s answered %d with %d Set-Cookie headers, want at most one: %q", s.url, s.status, len(s.setCookie), s.setCookie)
		}
		if s.commits > 1 {
			t.Errorf("%s saved the session %d times, want at most once", s.url, s.commits)
		}
	}
	if ours < 4 { // launch, callback, page, page again
		t.Fatalf("the browser made %d requests to the app, want at least 4: %+v", ours, a.rec.steps)
	}
	cb := a.rec.steps[len(a.rec.steps)-3] // callback, then the page twice
	if !strings.Contains(cb.url, "/fhir/callback") || len(cb.setCookie) != 1 || cb.commits != 1 {
		t.Errorf("the callback: %s, %d Set-Cookie, %d saves; want the callback with one Set-Cookie (the renewed token) and one save", cb.url, len(cb.setCookie), cb.commits)
	}
}

// A plain HTML form posting to /logout lands on Config.LogoutURL (303);
// an API call that asks for JSON gets 204; either way the launch is gone.
func TestLogoutRedirect(t *testing.T) {
	a := newSharedApp(t, func(c *adapters.Config) { c.LogoutURL = "/signed-out" })
	a.launch(t)
	a.browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	resp, err := a.browser.Post(a.srv.URL+"/fhir/logout", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signed-out" {
		t.Errorf("the form's logout = %d to %q, want 303 to /signed-out", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = a.browser.Get(a.srv.URL + "/fhir/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the page after the logout = %d, want 401", resp.StatusCode)
	}

	req, _ := http.NewRequest(http.MethodPost, a.srv.URL+"/fhir/logout", nil)
	req.Header.Set("Accept", "application/json")
	resp, err = a.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("the API's logout = %d, want 204", resp.StatusCode)
	}
}

// LoadReady lets a request without a launch through with the reason in
// its context, and adapters.Error answers it with the page of the App's
// renderer.
func TestLoadErrorAndShortErrorPath(t *testing.T) {
	var rendered atomic.Int64
	s, err := adapters.New(adapters.Config{
		Config: core.Config{ClientID: "my-app", CallbackURL: "http://127.0.0.1/fhir/callback",
			Issuers: []core.Issuer{{URL: "https://ehr.example/fhir"}}},
		RedirectURL: "/fhir/",
		Cookies:     sessions.CookieInsecureHTTP,
		RenderError: func(w http.ResponseWriter, r *http.Request, err error) {
			rendered.Add(1)
			adapters.RenderError(w, r, err)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := s.LoadReady(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rc := adapters.FromContext(r.Context()); rc != nil {
			t.Errorf("a ReadyClient for a browser without a launch")
		}
		lerr := adapters.LoadError(r.Context())
		if !errors.Is(lerr, core.CodeNoLaunch) {
			t.Errorf("LoadError = %v, want no_launch", lerr)
		}
		adapters.Error(w, r, lerr)
	}))
	rr := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Accept", "application/json")
	h.ServeHTTP(rr, req)
	var body struct{ Error string }
	if err := json.Unmarshal(rr.Body.Bytes(), &body); err != nil || rr.Code != http.StatusUnauthorized || body.Error != "no_launch" {
		t.Errorf("the answer = %d %q, want 401 with error no_launch", rr.Code, rr.Body.String())
	}
	if rendered.Load() != 1 {
		t.Errorf("the App's renderer ran %d times, want once", rendered.Load())
	}
	if adapters.LoadError(context.Background()) != nil || adapters.FromContext(context.Background()) != nil {
		t.Error("a context outside the middleware has a load error or a client")
	}
}

// An engine built once and passed as Config.Engine serves the routes: a
// launch made through them is ready in the engine, for the app's
// background code, under the browser's id.
func TestSharedEngine(t *testing.T) {
	var engine *core.Engine
	a := newSharedApp(t, func(c *adapters.Config) {
		var err error
		c.Config.Storage = core.NewMemoryStorage()
		if engine, err = core.New(c.Config); err != nil {
			t.Fatal(err)
		}
		c.Config = core.Config{}
		c.Engine = engine
	})
	if body := a.launch(t); body != "patient pat-1" {
		t.Fatalf("the page after the launch = %q", body)
	}
	if _, err := engine.Discover(context.Background(), a.ehr.FHIRBaseURL()); err != nil {
		t.Errorf("the shared engine's Discover: %v", err)
	}
	if before := a.ehr.Count(smarttest.EndpointDiscovery); before != 1 {
		t.Errorf("the EHR's configuration was fetched %d times, want once: the routes and the app share the engine's cache", before)
	}

	_, err := adapters.New(adapters.Config{Engine: engine, Config: core.Config{ClientID: "x"}, RedirectURL: "/"})
	if !errors.Is(err, core.CodeInvalidConfig) || !strings.Contains(err.Error(), "Config.Engine") {
		t.Errorf("Engine and Config.Config both set: %v, want an invalid_config error naming Config.Engine", err)
	}
}

// A logout another site's page sends (its form, or its script) is refused,
// and the launch stays: with an app embedded in the EHR, the cookie is
// SameSite=None and would go with it.
func TestLogoutFromAnotherSiteIsRefused(t *testing.T) {
	a := newSharedApp(t, nil)
	a.launch(t)
	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},    // a sibling subdomain
		{"Origin": "https://evil.example"}, // a browser without Sec-Fetch-Site
	} {
		req, _ := http.NewRequest(http.MethodPost, a.srv.URL+"/fhir/logout", nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := a.browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("a logout with %v = %d, want 400", h, resp.StatusCode)
		}
	}
	resp, err := a.browser.Get(a.srv.URL + "/fhir/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the page after a refused logout = %d, want 200: the launch stays", resp.StatusCode)
	}

	// The app's own page: same-origin, or its Origin.
	for _, h := range []map[string]string{{"Sec-Fetch-Site": "same-origin"}, {"Origin": a.srv.URL}} {
		a.launch(t)
		req, _ := http.NewRequest(http.MethodPost, a.srv.URL+"/fhir/logout", nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		req.Header.Set("Accept", "application/json")
		resp, err := a.browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("the app's own logout with %v = %d, want 204", h, resp.StatusCode)
		}
	}
}

// failingCommits is a store whose saves of browser sessions fail.
type failingCommits struct{ *memstore.MemStore }

func (s failingCommits) Commit(token string, b []byte, expiry time.Time) error {
	if !strings.HasPrefix(token, sessions.DefaultKeyPrefix) {
		return errors.New("the store is down")
	}
	return s.MemStore.Commit(token, b, expiry)
}

// When the browser session cannot be saved, on a manager the app passes
// with the one store-error recipe, the answer is the 503 alone: nothing the
// handler goes on to write (here the launch's redirect page, with its
// state and nonce in a link) follows it.
func TestStoreFailureOnAPassedManagerAnswersAlone(t *testing.T) {
	ehr := smarttest.NewServer(smarttest.Options{})
	t.Cleanup(ehr.Close)
	ehr.RegisterClient(smarttest.Client{ID: "my-app"})
	sm := scs.New()
	sm.Store = failingCommits{memstore.NewWithCleanupInterval(0)}
	sm.ErrorFunc = sessions.StoreErrorFunc(nil)
	s, err := adapters.New(adapters.Config{
		Config: core.Config{ClientID: "my-app", CallbackURL: "http://127.0.0.1/fhir/callback",
			Issuers: []core.Issuer{{URL: ehr.FHIRBaseURL()}}, AllowInsecureHTTP: true},
		SessionManager: sm,
		RedirectURL:    "/fhir/",
		Cookies:        sessions.CookieInsecureHTTP,
	})
	if err != nil {
		t.Fatal(err)
	}
	rr := httptest.NewRecorder()
	launch, _ := url.Parse(ehr.EHRLaunchURL("http://127.0.0.1/fhir/launch", smarttest.LaunchContext{Patient: "pat-1"}))
	s.Handler(http.NotFoundHandler()).ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/launch?"+launch.RawQuery, nil))
	if rr.Code != http.StatusServiceUnavailable || strings.Contains(rr.Body.String(), "authorize") || strings.Contains(rr.Body.String(), "state=") {
		t.Errorf("the launch with a failing store = %d %q; want the 503 alone", rr.Code, rr.Body.String())
	}
}
