package attacks

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/sessions"
)

// cookieAttacks lists the attacks on the browser session: its cookie and the sessions a launch creates.
func cookieAttacks() []attack {
	return []attack{
		{
			// Anyone can request /launch with the app's own issuer; when
			// the launch fails, here at discovery, it must leave nothing:
			// a session per refused request would fill the store.
			name:   "launch_refused_sets_no_session",
			setup:  setup{cfg: func(e *env, c *adapters.Config) { c.MaxRetries = -1 }},
			status: http.StatusBadGateway, code: core.CodeDiscoveryFailed,
			do: func(t *testing.T, e *env) *response {
				e.ehr.SetFaults(smarttest.Faults{Status: map[smarttest.Endpoint]int{
					smarttest.EndpointDiscovery: http.StatusInternalServerError,
					smarttest.EndpointMetadata:  http.StatusInternalServerError,
				}})
				return e.browser().get(e.launchURL("pat-1"))
			},
			check: func(t *testing.T, e *env, r *response) {
				if c := r.Header.Values("Set-Cookie"); len(c) != 0 {
					t.Errorf("the refused launch set a cookie: %q", c)
				}
				if n := len(e.scsSessions()); n != 0 {
					t.Errorf("the refused launch stored %d sessions", n)
				}
			},
		},
		{
			// Each anonymous launch makes a session; one that never comes
			// back from the EHR must not stay for the session's whole
			// lifetime, only as long as its pending launch.
			name:   "launch_session_lives_pending_ttl",
			status: http.StatusFound, stored: 1,
			do: func(t *testing.T, e *env) *response {
				b := e.browser()
				launch := b.get(e.launchURL("pat-1"))
				c := sessionCookie(t, launch)
				wantLifetime(t, e, "after the launch", c, e.cfg.PendingLaunchTTL)
				cb := b.get(b.get(launch.Header.Get("Location")).Header.Get("Location"))
				wantLifetime(t, e, "after the callback", sessionCookie(t, cb), scs.New().Lifetime)
				return cb
			},
		},
		{
			// An app passes its own manager (scs's Cookie.Secure is false)
			// and keeps the default cookie mode: the cookie is Secure and
			// HttpOnly all the same, and the launch still works over a
			// loopback http callback, where browsers send Secure cookies.
			name: "cookie_secure_on_passed_manager",
			setup: setup{cfg: func(e *env, c *adapters.Config) {
				sm := scs.New()
				sm.Store = e.store
				c.SessionManager = sm
				c.Cookies = sessions.CookieSecure // the default
			}},
			status: http.StatusOK, stored: 1,
			do: func(t *testing.T, e *env) *response {
				b := e.browser()
				launch := b.get(e.launchURL("pat-1"))
				if c := sessionCookie(t, launch); !c.Secure || !c.HttpOnly {
					t.Errorf("session cookie %q: want Secure and HttpOnly", launch.Header.Get("Set-Cookie"))
				}
				return b.follow(launch.Header.Get("Location"))
			},
		},
		{
			// The cookie's name carries the __Host- prefix, so browsers
			// take it only Secure, with Path=/ and no Domain, and only
			// from the app's own host.
			name:   "cookie_host_prefix",
			setup:  setup{cfg: func(e *env, c *adapters.Config) { c.Cookies = sessions.CookieSecure }},
			status: http.StatusFound,
			do: func(t *testing.T, e *env) *response {
				r := e.browser().get(e.launchURL("pat-1"))
				c := sessionCookie(t, r)
				raw := r.Header.Get("Set-Cookie")
				if !strings.HasPrefix(c.Name, "__Host-") || c.Path != "/" || c.Domain != "" || !c.Secure ||
					strings.Contains(strings.ToLower(raw), "domain=") {
					t.Errorf("session cookie %q: want a __Host- name, Secure, Path=/ and no Domain", raw)
				}
				return r
			},
		},
		{
			// Cookie tossing: a site on a sibling subdomain plants its own
			// session token under the app's cookie name with the more
			// specific Path=/fhir/callback, so the victim's callback is
			// read in the attacker's session. Browsers refuse to plant a
			// __Host- cookie from another host or with another Path.
			name:   "cookie_tossing_sibling_subdomain",
			setup:  setup{cfg: func(e *env, c *adapters.Config) { c.Cookies = sessions.CookieSecure }},
			status: http.StatusOK, stored: 1,
			do: func(t *testing.T, e *env) *response {
				planted := sessionCookie(t, e.browser().get(e.launchURL("pat-2"))) // the attacker's session
				victim := e.browser()
				cb := victim.toCallback(e.launchURL("pat-1"))
				name := planted.Name
				if strings.HasPrefix(name, "__Host-") {
					name = strings.TrimPrefix(name, "__Host-") // all a browser lets another host plant
				}
				app, _ := url.Parse(e.app.URL + "/fhir/callback")
				victim.client.Jar.SetCookies(app, []*http.Cookie{{Name: name, Value: planted.Value, Path: "/fhir/callback"}})
				r := victim.follow(cb.String())
				if !strings.Contains(r.body, `"pat-1"`) {
					t.Errorf("the victim's launch ended in %q, want pat-1 in the victim's session", r.body)
				}
				return r
			},
		},
		refusedCookieConfig("cookie_tossing_refused_domain", "Config.SessionManager.Cookie.Domain",
			func(sm *scs.SessionManager) { sm.Cookie.Domain = "example.org" }),
		refusedCookieConfig("cookie_tossing_refused_path", "Config.SessionManager.Cookie.Path",
			func(sm *scs.SessionManager) { sm.Cookie.Path = "/fhir" }),
		{
			// Session fixation through the forward that a renewed token
			// keeps for the browser's other tabs: the attacker planted its
			// token, the victim's callback renewed it, and the attacker
			// tries the old token within the forward's life, on a page, on
			// a callback with a state it made up, and on one with the
			// state of a launch of another session of its own. Each finds
			// no session, and sets no cookie.
			name:   "session_fixation_forward_needs_state",
			status: http.StatusUnauthorized, code: core.CodeNoLaunch, stored: 1,
			do: func(t *testing.T, e *env) *response {
				attacker, victim := plantedSession(t, e)
				page := victim.complete("pat-1")
				other := e.browser().toCallback(e.launchURL("pat-2")) // another session of the attacker's
				madeUp := e.url("/fhir/callback?code=made-up&state=" + strings.Repeat("A", 43) + "&iss=" + url.QueryEscape(e.iss))
				var r *response
				for _, u := range []string{page.String(), madeUp, other.String()} {
					r = attacker.get(u)
					if r.StatusCode != http.StatusUnauthorized || r.errorCode() != core.CodeNoLaunch {
						t.Errorf("the old token on %s: %d %.200s, want 401 no_launch", strings.SplitN(u, "?", 2)[0], r.StatusCode, r.body)
					}
					if c := r.Header.Values("Set-Cookie"); len(c) != 0 {
						t.Errorf("the old token got a cookie: %q", c)
					}
				}
				return r
			},
		},
		{
			// The attacker kept a pending launch of its own in the session
			// it planted, approved at the EHR as its own user, and finishes
			// it with the old token after the victim's callback: the
			// forward honours only callbacks authorized by the user who
			// renewed the token, checked before anything is stored, so
			// the attacker gets no cookie and its launch is never stored;
			// the victim's launch is untouched.
			name:   "session_fixation_forward_other_user",
			status: http.StatusUnauthorized, code: core.CodeNoLaunch, stored: 1,
			do: func(t *testing.T, e *env) *response {
				attacker, victim := plantedSession(t, e)
				own := e.ehr.NewLaunch(smarttest.LaunchContext{Patient: "pat-2", FHIRUser: "Practitioner/prac-2"})
				cb := attacker.toCallback(e.url("/fhir/launch?iss=" + url.QueryEscape(e.iss) + "&launch=" + url.QueryEscape(own)))
				page := victim.complete("pat-1")
				r := attacker.get(cb.String())
				if c := r.Header.Values("Set-Cookie"); len(c) != 0 {
					t.Errorf("the old token got a cookie: %q", c)
				}
				if v := victim.get(page.String()); v.StatusCode != http.StatusOK || !strings.Contains(v.body, "pat-1") {
					t.Errorf("the victim's launch after the attacker's callback: %d %.200s, want its page", v.StatusCode, v.body)
				}
				return r
			},
		},
	}
}

// plantedSession has an attacker start a launch, and so get a session
// token, and plants that token in a new victim browser.
func plantedSession(t *testing.T, e *env) (attacker, victim *browser) {
	t.Helper()
	attacker = e.browser()
	attacker.get(e.launchURL("pat-2"))
	app, _ := url.Parse(e.app.URL)
	planted := attacker.client.Jar.Cookies(app)
	if len(planted) != 1 {
		t.Fatalf("the attacker has %d cookies", len(planted))
	}
	victim = e.browser()
	victim.client.Jar.SetCookies(app, planted)
	return attacker, victim
}

// refusedCookieConfig is an app that passes a manager whose cookie would
// be shared with sibling subdomains or scoped below "/": New must refuse it
// with an invalid_config error naming field. The answer judged is the
// error as the adapters render it; an accepted config answers 200.
func refusedCookieConfig(name, field string, change func(*scs.SessionManager)) attack {
	return attack{
		name:   name,
		status: http.StatusInternalServerError, code: core.CodeInvalidConfig,
		do: func(t *testing.T, e *env) *response {
			sm := scs.New()
			sm.Store = e.store
			change(sm)
			_, err := adapters.New(adapters.Config{
				Config: core.Config{
					ClientID:          "app",
					CallbackURL:       e.url("/fhir/callback"),
					Issuers:           []core.Issuer{{URL: e.iss}},
					AllowInsecureHTTP: true,
				},
				SessionManager: sm,
				RedirectURL:    e.url("/fhir/"),
			})
			rec := httptest.NewRecorder()
			if err == nil {
				rec.WriteHeader(http.StatusOK)
			} else {
				if !strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), "__Host-") {
					t.Errorf("New: %v; want %s named, and why", err, field)
				}
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				req.Header.Set("Accept", "application/json")
				adapters.RenderError(rec, req, err)
			}
			return &response{Response: rec.Result(), body: rec.Body.String()}
		},
	}
}

// sessionCookie returns the session cookie a response sets, or fails.
func sessionCookie(t *testing.T, r *response) *http.Cookie {
	t.Helper()
	cs := r.Cookies()
	if len(cs) != 1 {
		t.Fatalf("%s: want one session cookie, got %q", r.Request.URL.Path, r.Header.Values("Set-Cookie"))
	}
	return cs[0]
}

// scsSessions returns the scs sessions in the store, by token: every key
// but the SMART records'.
func (e *env) scsSessions() map[string][]byte {
	all, err := e.store.All()
	if err != nil {
		e.t.Fatal(err)
	}
	for k := range all {
		if strings.HasPrefix(k, "smart:") {
			delete(all, k)
		}
	}
	return all
}

// wantLifetime checks that the session of cookie c lives about d, in the
// cookie and in the store.
func wantLifetime(t *testing.T, e *env, when string, c *http.Cookie, d time.Duration) {
	t.Helper()
	if want := int(d.Seconds()); c.MaxAge < want-5 || c.MaxAge > want+1 {
		t.Errorf("%s: the cookie's Max-Age is %d, want about %d", when, c.MaxAge, want)
	}
	if got, want := time.Until(c.Expires), d; got < want-5*time.Second || got > want+2*time.Second {
		t.Errorf("%s: the cookie expires in %s, want about %s", when, got.Round(time.Second), want)
	}
	// The store keeps the session under a hash of its token
	// (HashTokenInStore), as scs computes it.
	sum := sha256.Sum256([]byte(c.Value))
	v, ok := e.scsSessions()[base64.RawURLEncoding.EncodeToString(sum[:])]
	if !ok {
		t.Fatalf("%s: the session is not in the store", when)
	}
	deadline, _, err := scs.GobCodec{}.Decode(v)
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Until(deadline); got < d-5*time.Second || got > d+time.Second {
		t.Errorf("%s: the stored session expires in %s, want about %s", when, got.Round(time.Second), d)
	}
}
