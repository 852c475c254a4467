package adaptertest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/sessions"
)

// Run runs the whole suite against one router. Every case starts its own
// fake EHR and app, and runs in parallel with the others.
func Run(t *testing.T, r Router) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, r)
		})
	}
}

// Cases lists the names of the suite's cases, in order.
func Cases() []string {
	names := make([]string, len(cases))
	for i, c := range cases {
		names[i] = c.name
	}
	return names
}

type suiteCase struct {
	name string
	run  func(t *testing.T, r Router)
}

var cases = []suiteCase{
	{"EHRLaunch", ehrLaunch},
	{"StandaloneLaunch", standaloneLaunch},
	{"EHRLaunchOnly", ehrLaunchOnly},
	{"MissingIssuer", missingIssuer},
	{"UnknownIssuer", unknownIssuer},
	{"EHRRefuses", ehrRefuses},
	{"EHRDown", ehrDown},
	{"TokenEndpointFails", tokenEndpointFails},
	{"StorageFails", storageFails},
	{"NoLaunch", noLaunch},
	{"InterleavedLaunches", interleavedLaunches},
	{"HandleOfAnotherBrowser", handleOfAnotherBrowser},
	{"RequireHandle", requireHandle},
	{"CallbackErrors", callbackErrors},
	{"Logout", logout},
	{"JSONErrors", jsonErrors},
	{"CookieAttributes", cookieAttributes},
	{"ErrorHook", errorHook},
	{"SessionSavedOnHandlerError", sessionSavedOnHandlerError},
	{"LogsNameTheRoute", logsNameTheRoute},
	{"InvalidConfig", invalidConfig},
}

// sessionCookie is the name of the session cookie sessions.New gives in
// the env's cookie mode, CookieInsecureHTTP.
const sessionCookie = sessions.InsecureCookieName

var (
	lcAmy    = smarttest.LaunchContext{Patient: "pat-1", Encounter: "enc-1", FHIRUser: "Practitioner/prac-1"}
	lcDaniel = smarttest.LaunchContext{Patient: "pat-2", FHIRUser: "Practitioner/prac-1"}
)

func ehrLaunch(t *testing.T, r Router) {
	e := newEnv(t, r, nil)
	b := e.browser()

	launchURL := e.ehrLaunch(lcAmy)
	first := b.get(launchURL)
	expect(t, first, http.StatusFound)
	if first.cookie(sessionCookie) == nil {
		t.Fatal("the launch set no session cookie")
	}
	// A session with only a pending launch lives as long as the launch.
	wantMaxAge(t, "the launch's", first.cookie(sessionCookie), 10*time.Minute)
	authz := first.location(t, launchURL)
	if got, want := authz.Scheme+"://"+authz.Host+authz.Path, e.ehr.AuthorizeURL(); got != want {
		t.Fatalf("launch redirects to %s, want the authorize endpoint %s", got, want)
	}
	q := authz.Query()
	launchID, _ := url.Parse(launchURL)
	want := map[string]string{
		"response_type":         "code",
		"client_id":             clientID,
		"redirect_uri":          e.cfg.CallbackURL,
		"aud":                   e.ehr.FHIRBaseURL(),
		"launch":                launchID.Query().Get("launch"),
		"code_challenge_method": "S256",
	}
	for k, v := range want {
		if got := q.Get(k); got != v {
			t.Errorf("authorize %s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 43 {
			t.Errorf("authorize %s = %q, want at least 256 bits", k, q.Get(k))
		}
	}
	if scope := strings.Fields(q.Get("scope")); !contains(scope, "launch") || !contains(scope, "openid") {
		t.Errorf("authorize scope = %q, want launch and openid in it", q.Get("scope"))
	}

	cb := b.authorize(authz)
	cbResp := b.get(cb.String())
	expect(t, cbResp, http.StatusFound)
	renewed := cbResp.cookie(sessionCookie)
	if renewed == nil || renewed.Value == first.cookie(sessionCookie).Value {
		t.Fatal("the callback did not renew the session token")
	}
	wantMaxAge(t, "the callback's", renewed, e.cfg.SessionManager.Lifetime)
	app := cbResp.location(t, cb.String())
	if app.Path != "/fhir/api/patient" || app.Query().Get(adapters.HandleParam) == "" {
		t.Fatalf("the callback redirects to %s, want /fhir/api/patient with a launch handle", app)
	}

	got := b.patient(app.String())
	if got.Patient != "pat-1" || got.Name != "Shaw" || got.Handle != app.Query().Get(adapters.HandleParam) {
		t.Errorf("app route answers %+v, want pat-1 Shaw with the handle", got)
	}
	if link, _ := url.Parse(got.Link); link == nil || link.Query().Get(adapters.HandleParam) != got.Handle {
		t.Errorf("adapters.URL gave %q, want the handle in it", got.Link)
	}
	if again := b.patient(e.url("/fhir/api/patient")); again.Patient != "pat-1" {
		t.Errorf("without a handle the app route answers %+v, want the most recent launch", again)
	}
	if w := b.get(e.url("/open/whoami")); w.status != http.StatusOK || w.body != "patient pat-1" {
		t.Errorf("LoadReady route answers %d %q, want the launch", w.status, w.body)
	}
	if g := b.patient(e.url("/guarded/patient")); g.Patient != "pat-1" {
		t.Errorf("RequireReady route answers %+v", g)
	}

	// The EHR refuses the access token: the client refreshes and retries.
	e.ehr.ExpireAccessTokens()
	if g := b.patient(app.String()); g.Name != "Shaw" {
		t.Errorf("after the token expired the app route answers %+v", g)
	}
	if e.ehr.Count(smarttest.EndpointTokenRefresh) == 0 {
		t.Error("no refresh after the access token expired")
	}
	if len(e.tokens.Tokens()) < 3 {
		t.Errorf("recorded %d tokens from the EHR, want access, refresh and id tokens", len(e.tokens.Tokens()))
	}
}

func standaloneLaunch(t *testing.T, r Router) {
	e := newEnv(t, r, nil)
	b := e.browser()
	authz := b.startLaunch(e.url("/fhir/launch?iss=" + url.QueryEscape(e.ehr.FHIRBaseURL())))
	q := authz.Query()
	if q.Has("launch") {
		t.Errorf("a standalone launch sent launch=%q", q.Get("launch"))
	}
	if !contains(strings.Fields(q.Get("scope")), "launch/patient") {
		t.Errorf("standalone scope = %q, want launch/patient", q.Get("scope"))
	}
	app := b.callback(b.authorize(authz))
	if got := b.patient(app.String()); got.Patient != "pat-1" {
		t.Errorf("app route answers %+v, want the standalone context's pat-1", got)
	}
}

func ehrLaunchOnly(t *testing.T, r Router) {
	e := newEnv(t, r, func(c *adapters.Config) { c.EHRLaunchOnly = true })
	b := e.browser()
	resp := b.get(e.url("/fhir/launch?iss=" + url.QueryEscape(e.ehr.FHIRBaseURL())))
	expect(t, resp, http.StatusBadRequest)
	wantPage(t, resp, "invalid_request")
	b.startLaunch(e.ehrLaunch(lcAmy)) // an EHR launch still works
}

func missingIssuer(t *testing.T, r Router) {
	e := newEnv(t, r, nil)
	b := e.browser()
	for _, path := range []string{"/fhir/launch", "/fhir/launch?launch=abc", "/fhir/launch?iss="} {
		resp := b.get(e.url(path))
		expect(t, resp, http.StatusBadRequest)
		wantPage(t, resp, "invalid_request")
		if c := resp.header.Values("Set-Cookie"); len(c) != 0 {
			t.Errorf("%s: a refused launch made a browser session: %q", path, c)
		}
	}
}

func unknownIssuer(t *testing.T, r Router) {
	e := newEnv(t, r, nil)
	resp := e.browser().get(e.url("/fhir/launch?launch=x&iss=" + url.QueryEscape("https://ehr.invalid/fhir")))
	expect(t, resp, http.StatusForbidden)
	wantPage(t, resp, "unknown_issuer")
	if !strings.Contains(e.logs.String(), `"code":"unknown_issuer"`) {
		t.Errorf("the refusal was not logged; logs:\n%s", e.logs.String())
	}
	if c := resp.header.Values("Set-Cookie"); len(c) != 0 {
		t.Errorf("a refused launch set a cookie: %q", c)
	}
}

func ehrRefuses(t *testing.T, r Router) {
	e := newEnv(t, r, nil)
	e.ehr.SetFaults(smarttest.Faults{AuthorizeError: "access_denied", AuthorizeErrorDescription: "The user said <b>no</b>"})
	b := e.browser()
	cb := b.authorize(b.startLaunch(e.ehrLaunch(lcAmy)))
	resp := b.get(cb.String())
	expect(t, resp, http.StatusForbidden)
	wantPage(t, resp, "authorization_denied")
	// The registered error code is named; the EHR's own words never are.
	if !strings.Contains(resp.body, "access_denied") {
		t.Errorf("the page does not name the EHR's error code: %s", resp.body)
	}
	if strings.Contains(resp.body, "said") {
		t.Errorf("the EHR's error_description reached the page: %s", resp.body)
	}
}

func ehrDown(t *testing.T, r Router) {
	e := newEnv(t, r, func(c *adapters.Config) { c.MaxRetries = -1 })
	launchURL := e.ehrLaunch(lcAmy)
	e.ehr.Close()
	resp := e.browser().get(launchURL)
	expect(t, resp, http.StatusBadGateway)
	wantPage(t, resp, "discovery_failed")
	if c := resp.header.Values("Set-Cookie"); len(c) != 0 {
		t.Errorf("a failed launch set a cookie: %q", c)
	}
}

func tokenEndpointFails(t *testing.T, r Router) {
	e := newEnv(t, r, func(c *adapters.Config) { c.MaxRetries = -1 })
	b := e.browser()
	cb := b.authorize(b.startLaunch(e.ehrLaunch(lcAmy)))
	e.ehr.SetFaults(smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointToken: http.StatusInternalServerError}})
	resp := b.get(cb.String())
	expect(t, resp, http.StatusBadGateway)
	wantPage(t, resp, "token_exchange_failed")
}

func storageFails(t *testing.T, r Router) {
	e := newEnv(t, r, nil)
	store := newFlakyStore()
	e.cfg.SessionManager.Store = store // the one-line swap, on the app's manager

	b := e.browser()
	app := b.launch(lcAmy)
	b.patient(app.String())

	store.down.Store(true)
	// A browser with a session: loading it fails.
	resp := b.get(app.String(), "Accept", "application/json")
	expect(t, resp, http.StatusServiceUnavailable)
	wantJSON(t, resp, "storage_unavailable")
	// A new browser: keeping the pending launch fails.
	resp = e.browser().get(e.ehrLaunch(lcAmy))
	expect(t, resp, http.StatusServiceUnavailable)
	wantPage(t, resp, "storage_unavailable")
	if resp.header.Get("Location") != "" {
		t.Error("a failed launch still redirects")
	}

	store.down.Store(false)
	b.patient(app.String()) // nothing was lost
}

func noLaunch(t *testing.T, r Router) {
	e := newEnv(t, r, nil)
	b := e.browser()
	for _, path := range []string{"/fhir/api/patient", "/guarded/patient", "/fhir/api/patient?" + adapters.HandleParam + "=nope"} {
		resp := b.get(e.url(path))
		expect(t, resp, http.StatusUnauthorized)
		wantPage(t, resp, "no_launch")
		if !strings.Contains(resp.body, "Launch the app again") {
			t.Errorf("%s: the 401 page has no hint to launch again: %s", path, resp.body)
		}
	}
	resp := b.get(e.url("/open/whoami"))
	expect(t, resp, http.StatusOK)
	if resp.body != "no launch" {
		t.Errorf("LoadReady route without a launch answers %q", resp.body)
	}
	// With a session but another handle, LoadReady still lets the request through.
	b.launch(lcAmy)
	resp = b.get(e.url("/open/whoami?" + adapters.HandleParam + "=nope"))
	if resp.status != http.StatusOK || resp.body != "no launch" {
		t.Errorf("LoadReady with an unknown handle answers %d %q", resp.status, resp.body)
	}
	expect(t, b.get(e.url("/fhir/api/patient?"+adapters.HandleParam+"=nope")), http.StatusUnauthorized)
}

func interleavedLaunches(t *testing.T, r Router) {
	e := newEnv(t, r, nil)
	b := e.browser()
	authA := b.startLaunch(e.ehrLaunch(lcAmy))
	authB := b.startLaunch(e.ehrLaunch(lcDaniel))
	appB := b.callback(b.authorize(authB))
	appA := b.callback(b.authorize(authA))

	a, bb := b.patient(appA.String()), b.patient(appB.String())
	if a.Patient != "pat-1" || a.Name != "Shaw" {
		t.Errorf("launch A answers %+v, want pat-1 Shaw", a)
	}
	if bb.Patient != "pat-2" || bb.Name != "Adams" {
		t.Errorf("launch B answers %+v, want pat-2 Adams", bb)
	}
	if a.Handle == bb.Handle {
		t.Error("both launches have the same handle")
	}
	if got := b.patient(e.url("/fhir/api/patient")); got.Patient != "pat-1" {
		t.Errorf("without a handle: %+v, want the most recent launch, A", got)
	}
	if got := b.patient(e.url("/fhir/api/patient"), adapters.HandleHeader, bb.Handle); got.Patient != "pat-2" {
		t.Errorf("with B's handle in %s: %+v, want B", adapters.HandleHeader, got)
	}
	if got := b.patient(e.url("/guarded/patient?" + adapters.HandleParam + "=" + bb.Handle)); got.Patient != "pat-2" {
		t.Errorf("RequireReady with B's handle: %+v, want B", got)
	}
}

func handleOfAnotherBrowser(t *testing.T, r Router) {
	e := newEnv(t, r, nil)
	one, two := e.browser(), e.browser()
	appOne := one.launch(lcAmy)
	two.launch(lcDaniel)
	resp := two.get(appOne.String())
	expect(t, resp, http.StatusUnauthorized)
	wantPage(t, resp, "no_launch")
}

func requireHandle(t *testing.T, r Router) {
	e := newEnv(t, r, func(c *adapters.Config) { c.RequireHandle = true })
	b := e.browser()
	app := b.launch(lcAmy)
	b.patient(app.String())
	expect(t, b.get(e.url("/fhir/api/patient")), http.StatusUnauthorized)
}

func callbackErrors(t *testing.T, r Router) {
	e := newEnv(t, r, nil)
	b := e.browser()
	resp := b.get(e.url("/fhir/callback?code=x&state=y"))
	expect(t, resp, http.StatusUnauthorized) // no browser session
	wantPage(t, resp, "no_launch")

	cb := b.authorize(b.startLaunch(e.ehrLaunch(lcAmy)))
	for path, code := range map[string]string{
		"/fhir/callback":                 "invalid_request",
		"/fhir/callback?code=x":          "invalid_request",
		"/fhir/callback?code=x&state=y":  "invalid_state",
		"/fhir/callback?state=" + "abcd": "invalid_request",
	} {
		resp := b.get(e.url(path))
		expect(t, resp, http.StatusBadRequest)
		wantPage(t, resp, code)
	}
	b.callback(cb)
	resp = b.get(cb.String()) // replayed
	expect(t, resp, http.StatusBadRequest)
	wantPage(t, resp, "invalid_state")
}

func logout(t *testing.T, r Router) {
	e := newEnv(t, r, nil)
	b := e.browser()
	app := b.launch(lcAmy)
	b.patient(app.String())
	revoked := e.ehr.Count(smarttest.EndpointRevoke)
	expect(t, b.do(http.MethodPost, e.url("/fhir/logout")), http.StatusNoContent)
	// The EHR advertises a revocation endpoint: the launch's refresh
	// and access tokens are revoked there.
	if n := e.ehr.Count(smarttest.EndpointRevoke) - revoked; n != 2 {
		t.Errorf("the logout made %d revocation requests, want 2", n)
	}
	expect(t, b.get(app.String()), http.StatusUnauthorized)
	expect(t, b.get(e.url("/guarded/patient")), http.StatusUnauthorized)
	expect(t, e.browser().do(http.MethodPost, e.url("/fhir/logout")), http.StatusNoContent)
}

func jsonErrors(t *testing.T, r Router) {
	e := newEnv(t, r, nil)
	b := e.browser()
	for _, c := range []struct {
		path   string
		status int
		code   string
	}{
		{"/fhir/launch", http.StatusBadRequest, "invalid_request"},
		{"/fhir/launch?launch=x&iss=https%3A%2F%2Fehr.invalid%2Ffhir", http.StatusForbidden, "unknown_issuer"},
		{"/fhir/api/patient", http.StatusUnauthorized, "no_launch"},
		{"/guarded/patient", http.StatusUnauthorized, "no_launch"},
	} {
		for _, accept := range []string{"application/json", "application/fhir+json", "application/json, text/html;q=0.9"} {
			resp := b.get(e.url(c.path), "Accept", accept)
			expect(t, resp, c.status)
			wantJSON(t, resp, c.code)
		}
		for _, accept := range []string{"", "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8", "application/json;q=0"} {
			resp := b.get(e.url(c.path), "Accept", accept)
			expect(t, resp, c.status)
			wantPage(t, resp, c.code)
		}
	}
}

func cookieAttributes(t *testing.T, r Router) {
	for _, c := range []struct {
		mode        sessions.CookieMode
		passed      bool   // the app passes scs.New(), named app_session
		name        string // the cookie's name
		secure      bool
		sameSite    http.SameSite
		partitioned bool
	}{
		{sessions.CookieSecure, false, sessions.CookieName, true, http.SameSiteLaxMode, false},
		{sessions.CookieEmbeddedInEHR, false, sessions.CookieName, true, http.SameSiteNoneMode, true},
		{sessions.CookieInsecureHTTP, false, sessions.InsecureCookieName, false, http.SameSiteLaxMode, false},
		{sessions.CookieSecure, true, "__Host-app_session", true, http.SameSiteLaxMode, false},
		{sessions.CookieEmbeddedInEHR, true, "__Host-app_session", true, http.SameSiteNoneMode, true},
		{sessions.CookieInsecureHTTP, true, "app_session", false, http.SameSiteLaxMode, false},
	} {
		name := c.mode.String()
		if c.passed {
			name += "/PassedManager"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, r, func(cfg *adapters.Config) {
				cfg.Cookies = c.mode
				cfg.SessionManager = nil // the manager New makes
				if c.passed {
					sm := scs.New() // Secure false, HttpOnly true
					sm.Store = memstore.NewWithCleanupInterval(0)
					sm.Cookie.Name = "app_session"
					sm.Cookie.HttpOnly = false
					cfg.SessionManager = sm
				}
			})
			resp := e.browser().get(e.ehrLaunch(lcAmy))
			expect(t, resp, http.StatusFound)
			ck := resp.cookie(c.name)
			if ck == nil {
				t.Fatalf("no %s cookie in %q", c.name, resp.header.Values("Set-Cookie"))
			}
			if !ck.HttpOnly || ck.Secure != c.secure || ck.SameSite != c.sameSite || ck.Partitioned != c.partitioned || ck.Path != "/" || ck.Domain != "" {
				t.Errorf("cookie %q: want HttpOnly, Path=/, no Domain, Secure %v, SameSite %v, Partitioned %v",
					resp.header.Get("Set-Cookie"), c.secure, c.sameSite, c.partitioned)
			}
		})
	}
}

func errorHook(t *testing.T, r Router) {
	e := newEnv(t, r, func(c *adapters.Config) {
		c.RenderError = func(w http.ResponseWriter, r *http.Request, err error) {
			var ce *core.Error
			if !errors.As(err, &ce) {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			w.WriteHeader(ce.Code.HTTPStatus())
			fmt.Fprintf(w, "custom: %s", string(ce.Code))
		}
	})
	b := e.browser()
	for path, want := range map[string]string{
		"/fhir/launch":      "custom: invalid_request",
		"/fhir/api/patient": "custom: no_launch",
		"/guarded/patient":  "custom: no_launch",
	} {
		if resp := b.get(e.url(path)); resp.body != want {
			t.Errorf("%s answers %d %q, want %q", path, resp.status, resp.body, want)
		}
	}
	if !strings.Contains(e.logs.String(), `"code":"no_launch"`) {
		t.Error("with a hook, failures are no longer logged")
	}
}

func sessionSavedOnHandlerError(t *testing.T, r Router) {
	e := newEnv(t, r, nil)
	b := e.browser()
	b.launch(lcAmy)
	resp := b.get(e.url("/fhir/api/fail"))
	expect(t, resp, http.StatusTeapot)
	if resp.cookie(sessionCookie) == nil {
		t.Errorf("the handler changed the session and failed, and the session was not saved: headers %v", resp.header)
	}
}

func invalidConfig(t *testing.T, r Router) {
	good := newEnv(t, r, nil).cfg
	for _, c := range []struct {
		field  string
		change func(*adapters.Config)
	}{
		{"Config.ClientID", func(c *adapters.Config) { c.ClientID = "" }},
		{"Config.CallbackURL", func(c *adapters.Config) { c.CallbackURL = "/relative" }},
		{"Config.Issuers", func(c *adapters.Config) { c.Issuers = nil }},
		{"Config.Cookies", func(c *adapters.Config) { c.Cookies = 42 }},
		{"Config.Cookies", func(c *adapters.Config) {
			c.Cookies = sessions.CookieSecure
			c.CallbackURL = "http://app.example/fhir/callback"
		}},
		{"Config.SessionManager.Cookie.Domain", func(c *adapters.Config) {
			c.Cookies = sessions.CookieSecure
			c.SessionManager = scs.New()
			c.SessionManager.Cookie.Domain = "example.org"
		}},
		{"Config.SessionManager.Cookie.Path", func(c *adapters.Config) {
			c.Cookies = sessions.CookieEmbeddedInEHR
			c.SessionManager = scs.New()
			c.SessionManager.Cookie.Path = "/fhir"
		}},
		{"Config.SessionManager.Cookie.Name", func(c *adapters.Config) {
			c.Cookies = sessions.CookieInsecureHTTP
			c.SessionManager = scs.New()
			c.SessionManager.Cookie.Name = "__Host-app"
		}},
	} {
		cfg := good
		c.change(&cfg)
		err := r.New(cfg)
		if err == nil || !strings.Contains(err.Error(), c.field) || !errors.Is(err, core.CodeInvalidConfig) {
			t.Errorf("New with a bad %s: %v, want an invalid_config error naming the field", c.field, err)
		}
		func() {
			defer func() {
				msg := fmt.Sprint(recover())
				if !strings.Contains(msg, c.field) {
					t.Errorf("Must with a bad %s panics with %q, want the field named", c.field, msg)
				}
			}()
			r.Must(cfg)
		}()
	}
	if err := r.New(good); err != nil {
		t.Errorf("New with a good config: %v", err)
	}
}

// wantMaxAge checks that a session cookie lasts about d.
func wantMaxAge(t *testing.T, what string, c *http.Cookie, d time.Duration) {
	t.Helper()
	if want := int(d.Seconds()); c.MaxAge < want-5 || c.MaxAge > want+1 {
		t.Errorf("%s session cookie has Max-Age %d, want about %d", what, c.MaxAge, want)
	}
}

// wantPage checks an HTML error page for code.
func wantPage(t *testing.T, resp *response, code string) {
	t.Helper()
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("error page Content-Type %q, want text/html", ct)
	}
	if n := strings.Count(resp.body, "<!doctype html>"); n != 1 {
		t.Errorf("the body holds %d pages, want one: %.1000s", n, resp.body)
	}
	if !strings.Contains(resp.body, "<code>"+code+"</code>") {
		t.Errorf("error page does not name %s: %.500s", code, resp.body)
	}
	checkErrorResponse(t, resp)
}

// wantJSON checks a JSON error body for code.
func wantJSON(t *testing.T, resp *response, code string) {
	t.Helper()
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("JSON error Content-Type %q, want application/json", ct)
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal([]byte(resp.body), &body); err != nil || body.Error != code || body.Description == "" {
		t.Errorf("JSON error body %q, want error %q with a description", resp.body, code)
	}
	checkErrorResponse(t, resp)
}

func checkErrorResponse(t *testing.T, resp *response) {
	t.Helper()
	if resp.header.Get("Cache-Control") != "no-store" {
		t.Errorf("error response Cache-Control %q, want no-store", resp.header.Get("Cache-Control"))
	}
	if strings.Contains(resp.body, "goroutine ") || strings.Contains(resp.body, ".go:") {
		t.Errorf("error response looks like a stack trace: %.500s", resp.body)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// logsNameTheRoute: a log line names the route a request took, never its
// path, which may hold a patient's id: the refusals of an app route with
// an id in its path and of a SMART route are logged with a route and
// without the path's id or the query.
func logsNameTheRoute(t *testing.T, r Router) {
	e := newEnv(t, r, nil)
	b := e.browser()
	const id = "pat-from-the-path-4711"
	expect(t, b.get(e.url("/fhir/api/chart/"+id)), http.StatusUnauthorized)
	expect(t, b.get(e.url("/fhir/launch?launch="+id)), http.StatusBadRequest)
	logs := e.logs.String()
	if strings.Contains(logs, id) {
		t.Errorf("a log line holds the request's path or query:\n%s", logs)
	}
	for _, want := range []string{`"code":"no_launch"`, `"code":"invalid_request"`} {
		line := ""
		for l := range strings.Lines(logs) {
			if strings.Contains(l, want) {
				line = l
			}
		}
		if !strings.Contains(line, `"route":"`) || strings.Contains(line, `"route":"unmatched"`) {
			t.Errorf("the %s line names no route: %q", want, line)
		}
	}
}
