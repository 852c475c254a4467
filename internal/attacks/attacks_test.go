package attacks

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// attack is one row of the suite: an attack on the app, the answer it must
// get, and how many launches may be stored at its end.
type attack struct {
	name  string
	setup setup
	// do runs the attack in a fresh env and returns the answer to judge.
	do     func(t *testing.T, e *env) *response
	status int
	code   core.Code // "" when the defence answers with a success
	stored int       // finished launches left in the store
	// check makes further assertions on the answer.
	check func(t *testing.T, e *env, r *response)
}

func (a attack) run(t *testing.T) {
	t.Parallel()
	e := newEnv(t, a.setup)
	if e == nil {
		return // the configuration was refused, as the row wants
	}
	r := a.do(t, e)
	if r.StatusCode != a.status {
		t.Errorf("status %d, want %d (body %.300s)", r.StatusCode, a.status, r.body)
	}
	if a.code != "" && r.errorCode() != a.code {
		t.Errorf("error code %q, want %q (body %.300s)", string(r.errorCode()), string(a.code), r.body)
	}
	if n := e.launchRecords(); n != a.stored {
		t.Errorf("%d launches stored, want %d", n, a.stored)
	}
	if a.check != nil {
		a.check(t, e, r)
	}
	e.checkNoLeaks()
}

// withQuery returns u with the query parameter k set to v (deleted when v
// is "").
func withQuery(u *url.URL, k, v string) string {
	c := *u
	q := c.Query()
	if v == "" {
		q.Del(k)
	} else {
		q.Set(k, v)
	}
	c.RawQuery = q.Encode()
	return c.String()
}

// idTokenAttack is a launch whose id_token the EHR forges in one way.
func idTokenAttack(name string, f smarttest.IDTokenFault) attack {
	return attack{name: name, status: 502, code: core.CodeInvalidIDToken, do: func(t *testing.T, e *env) *response {
		e.ehr.SetFaults(smarttest.Faults{IDToken: f})
		b := e.browser()
		return b.get(b.toCallback(e.launchURL("pat-1")).String())
	}}
}

// anyIssuerAttack launches with AllowAnyIssuer from an issuer whose address
// the engine must refuse to connect to.
func anyIssuerAttack(name, iss string) attack {
	return attack{
		name:   name,
		setup:  setup{defaultClient: true, cfg: func(e *env, c *adapters.Config) { c.AllowAnyIssuer, c.Issuers = true, nil }},
		status: 502, code: core.CodeDiscoveryFailed,
		do: func(t *testing.T, e *env) *response {
			return e.browser().get(e.url("/fhir/launch?launch=x&iss=" + url.QueryEscape(iss)))
		},
		check: func(t *testing.T, e *env, r *response) {
			if !strings.Contains(e.logs.String(), "refused to dial") {
				t.Errorf("the logs do not show the dial refused: %s", e.logs.String())
			}
		},
	}
}

// oversize makes the EHR pad one endpoint's answers past the engine's cap.
func oversize(ep smarttest.Endpoint) smarttest.Faults {
	return smarttest.Faults{Oversize: map[smarttest.Endpoint]int{ep: 2 << 20}}
}

// faultAtCallback sets f on the EHR after the authorize step and returns the
// callback's answer.
func faultAtCallback(f smarttest.Faults) func(*testing.T, *env) *response {
	return func(t *testing.T, e *env) *response {
		b := e.browser()
		cb := b.toCallback(e.launchURL("pat-1"))
		e.ehr.SetFaults(f)
		return b.get(cb.String())
	}
}

// faultAtApp completes a launch, sets f on the EHR and returns the app
// page's answer.
func faultAtApp(f smarttest.Faults, prepare func(e *env)) func(*testing.T, *env) *response {
	return func(t *testing.T, e *env) *response {
		b := e.browser()
		app := b.complete("pat-1")
		e.ehr.SetFaults(f)
		if prepare != nil {
			prepare(e)
		}
		return b.get(app.String())
	}
}

// allAttacks is the whole table, one list per theme.
func allAttacks() []attack {
	all := attacks()
	all = append(all, hostileEHRAttacks()...)
	all = append(all, outboundAttacks()...)
	all = append(all, cookieAttacks()...)
	all = append(all, inputAttacks()...)
	return all
}

func TestAttacks(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range allAttacks() {
		if seen[a.name] {
			t.Fatalf("two rows are named %s", a.name)
		}
		seen[a.name] = true
		t.Run(a.name, a.run)
	}
}

func attacks() []attack {
	return []attack{
		// --- state and the callback ---
		{name: "state_missing", status: 400, code: core.CodeInvalidRequest, do: func(t *testing.T, e *env) *response {
			b := e.browser()
			return b.get(withQuery(b.toCallback(e.launchURL("pat-1")), "state", ""))
		}},
		{name: "state_wrong", status: 400, code: core.CodeInvalidState, do: func(t *testing.T, e *env) *response {
			b := e.browser()
			return b.get(withQuery(b.toCallback(e.launchURL("pat-1")), "state", "forged-state"))
		}},
		{name: "state_replayed", status: 400, code: core.CodeInvalidState, stored: 1, do: func(t *testing.T, e *env) *response {
			b := e.browser()
			cb := b.toCallback(e.launchURL("pat-1"))
			if r := b.get(cb.String()); r.StatusCode != 302 {
				t.Fatalf("first callback: %d", r.StatusCode)
			}
			return b.get(cb.String())
		}},
		stateReplayedInFlight,
		stateFromAnotherBrowserKeepsTheLaunch,
		{name: "state_expired", status: 400, code: core.CodeInvalidState, do: func(t *testing.T, e *env) *response {
			b := e.browser()
			cb := b.toCallback(e.launchURL("pat-1"))
			e.clock.Advance(e.cfg.PendingLaunchTTL + time.Minute)
			return b.get(cb.String())
		}},
		{name: "state_from_another_browser", status: 400, code: core.CodeInvalidState, do: func(t *testing.T, e *env) *response {
			cb := e.browser().toCallback(e.launchURL("pat-1"))
			attacker := e.browser()
			attacker.get(e.launchURL("pat-2")) // the attacker has a session of its own
			return attacker.get(cb.String())
		}},
		{name: "callback_without_pending_launch", status: 401, code: core.CodeNoLaunch, do: func(t *testing.T, e *env) *response {
			return e.browser().get(e.url("/fhir/callback?code=stolen&state=guessed"))
		}},
		{name: "callback_state_of_no_launch", status: 400, code: core.CodeInvalidState, do: func(t *testing.T, e *env) *response {
			b := e.browser()
			b.get(e.launchURL("pat-1"))
			return b.get(e.url("/fhir/callback?code=stolen&state=" + strings.Repeat("A", 43)))
		}},
		{name: "code_reused", status: 502, code: core.CodeTokenExchangeFailed, stored: 1, do: func(t *testing.T, e *env) *response {
			b := e.browser()
			first := b.toCallback(e.launchURL("pat-1"))
			b.get(first.String())
			second := b.toCallback(e.launchURL("pat-2"))
			return b.get(withQuery(second, "code", first.Query().Get("code")))
		}},
		{name: "code_injected_from_another_launch", status: 502, code: core.CodeTokenExchangeFailed, do: func(t *testing.T, e *env) *response {
			// The attacker's own code, injected into the victim's callback:
			// the victim's PKCE verifier does not match its challenge.
			attackerCode := e.browser().toCallback(e.launchURL("pat-2")).Query().Get("code")
			victim := e.browser()
			return victim.get(withQuery(victim.toCallback(e.launchURL("pat-1")), "code", attackerCode))
		}},
		{name: "pkce_challenge_swapped", status: 502, code: core.CodeTokenExchangeFailed, do: func(t *testing.T, e *env) *response {
			b := e.browser()
			r := b.get(e.launchURL("pat-1"))
			authz, _ := url.Parse(r.Header.Get("Location"))
			sum := sha256.Sum256([]byte("attacker-chosen-verifier-attacker-chosen-verifier"))
			r = b.get(withQuery(authz, "code_challenge", base64.RawURLEncoding.EncodeToString(sum[:])))
			return b.get(r.Header.Get("Location"))
		}},
		{name: "pkce_challenge_stripped", status: 403, code: core.CodeAuthorizationDenied, do: func(t *testing.T, e *env) *response {
			b := e.browser()
			r := b.get(e.launchURL("pat-1"))
			authz, _ := url.Parse(r.Header.Get("Location"))
			r = b.get(withQuery(authz, "code_challenge", ""))
			return b.get(r.Header.Get("Location"))
		}},
		pkceDowngrade,
		{name: "mixup_iss_mismatch", setup: setup{ehr: smarttest.Options{AuthorizationResponseIss: true}},
			status: 400, code: core.CodeInvalidRequest, do: func(t *testing.T, e *env) *response {
				e.ehr.SetFaults(smarttest.Faults{WrongCallbackIss: true})
				b := e.browser()
				return b.get(b.toCallback(e.launchURL("pat-1")).String())
			}},
		{name: "authorization_denied", status: 403, code: core.CodeAuthorizationDenied, do: func(t *testing.T, e *env) *response {
			e.ehr.SetFaults(smarttest.Faults{AuthorizeError: "access_denied", AuthorizeErrorDescription: "<script>alert(1)</script>"})
			return e.browser().follow(e.launchURL("pat-1"))
		}, check: func(t *testing.T, e *env, r *response) {
			// The registered code may be named; the EHR's own words never are.
			if strings.Contains(r.body, "alert") || !strings.Contains(r.body, "access_denied") {
				t.Errorf("the error page shows the EHR's text, or not the code: %.500s", r.body)
			}
		}},
		{name: "error_description_html_injection", status: 403, do: func(t *testing.T, e *env) *response {
			b := e.browser()
			cb := b.toCallback(e.launchURL("pat-1"))
			return b.get(e.url("/fhir/callback?error=access_denied&state="+cb.Query().Get("state")+
				"&error_description="+url.QueryEscape("<script>alert(1)</script>")), "Accept", "text/html")
		}, check: func(t *testing.T, e *env, r *response) {
			if strings.Contains(r.body, "script&gt;") || strings.Contains(r.body, "alert") {
				t.Errorf("the error page shows the EHR's text: %.500s", r.body)
			}
		}},
		{name: "error_without_state_content_spoofing", status: 400, code: core.CodeInvalidState, do: func(t *testing.T, e *env) *response {
			b := e.browser()
			b.get(e.launchURL("pat-1"))
			return b.get(e.url("/fhir/callback?error=Call_555-0100_now&error_description=" + url.QueryEscape("Your account is locked: call 555-0100")))
		}, check: func(t *testing.T, e *env, r *response) {
			if strings.Contains(r.body, "555-0100") {
				t.Errorf("a link to the callback with no launch of its own put its text on the page: %.300s", r.body)
			}
		}},
		{name: "error_crlf_injection", status: 403, code: core.CodeAuthorizationDenied, do: func(t *testing.T, e *env) *response {
			b := e.browser()
			cb := b.toCallback(e.launchURL("pat-1"))
			return b.get(e.url("/fhir/callback?state=" + cb.Query().Get("state") +
				"&error=access_denied%0d%0aSet-Cookie:%20evil=1&error_description=x%0d%0aLocation:%20https://evil.example"))
		}, check: func(t *testing.T, e *env, r *response) {
			if r.Header.Get("Location") != "" || strings.Contains(strings.Join(r.Header.Values("Set-Cookie"), ";"), "evil") {
				t.Errorf("a header was injected: %v", r.Header)
			}
		}},

		// --- the id_token ---
		idTokenAttack("idtoken_alg_none", smarttest.IDTokenAlgNone),
		idTokenAttack("idtoken_hs256_with_public_key", smarttest.IDTokenHS256PublicKey),
		idTokenAttack("idtoken_unknown_kid", smarttest.IDTokenUnknownKID),
		idTokenAttack("idtoken_bad_signature", smarttest.IDTokenBadSignature),
		idTokenAttack("idtoken_wrong_iss", smarttest.IDTokenWrongIssuer),
		idTokenAttack("idtoken_wrong_aud", smarttest.IDTokenWrongAudience),
		idTokenAttack("idtoken_audiences_without_client", smarttest.IDTokenMultipleAudiencesWithoutClient),
		idTokenAttack("idtoken_expired", smarttest.IDTokenExpired),
		idTokenAttack("idtoken_iat_in_future", smarttest.IDTokenFutureIAT),
		idTokenAttack("idtoken_nonce_missing", smarttest.IDTokenNoNonce),
		idTokenAttack("idtoken_nonce_wrong", smarttest.IDTokenWrongNonce),

		// --- issuers ---
		{name: "issuer_not_allowed", status: 403, code: core.CodeUnknownIssuer, do: func(t *testing.T, e *env) *response {
			return e.browser().get(e.url("/fhir/launch?launch=x&iss=" + url.QueryEscape("https://evil.example/fhir")))
		}},
		{name: "issuer_over_http", setup: setup{defaultClient: true, cfg: func(e *env, c *adapters.Config) {
			c.AllowInsecureHTTP, c.AllowAnyIssuer, c.Issuers = false, true, nil
		}}, status: 403, code: core.CodeUnknownIssuer, do: func(t *testing.T, e *env) *response {
			return e.browser().get(e.url("/fhir/launch?launch=x&iss=" + url.QueryEscape(e.ehr.FHIRBaseURL())))
		}, check: func(t *testing.T, e *env, r *response) {
			if e.ehr.Count(smarttest.EndpointDiscovery) != 0 {
				t.Error("the http issuer was contacted")
			}
		}},
		{name: "issuer_scheme_javascript", status: 400, code: core.CodeInvalidRequest, do: func(t *testing.T, e *env) *response {
			return e.browser().get(e.url("/fhir/launch?launch=x&iss=" + url.QueryEscape("javascript:alert(1)")))
		}},
		{name: "issuer_scheme_file", setup: setup{defaultClient: true, cfg: func(e *env, c *adapters.Config) { c.AllowAnyIssuer = true }},
			status: 403, code: core.CodeUnknownIssuer, do: func(t *testing.T, e *env) *response {
				return e.browser().get(e.url("/fhir/launch?launch=x&iss=" + url.QueryEscape("file://localhost/etc/passwd")))
			}},
		anyIssuerAttack("ssrf_loopback", "https://127.0.0.1:9/fhir"),
		anyIssuerAttack("ssrf_localhost_name", "https://localhost:9/fhir"),
		anyIssuerAttack("ssrf_ipv6_loopback", "https://[::1]:9/fhir"),
		anyIssuerAttack("ssrf_private_10", "https://10.0.0.1:9/fhir"),
		anyIssuerAttack("ssrf_private_192_168", "https://192.168.1.1:9/fhir"),
		anyIssuerAttack("ssrf_link_local_metadata", "https://169.254.169.254/latest/meta-data"),
		anyIssuerAttack("ssrf_ipv6_link_local", "https://[fe80::1]:9/fhir"),
		anyIssuerAttack("ssrf_unspecified", "https://0.0.0.0:9/fhir"),
		anyIssuerAttack("ssrf_cgnat", "https://100.64.0.1:9/fhir"),

		// --- where the browser is sent ---
		{name: "redirect_url_tampering", status: 302, stored: 1, do: func(t *testing.T, e *env) *response {
			b := e.browser()
			cb := b.toCallback(e.launchURL("pat-1"))
			q := cb.Query()
			q.Set("redirect_uri", "https://evil.example/")
			q.Set("next", "https://evil.example/")
			q.Set("return_to", "//evil.example/")
			cb.RawQuery = q.Encode()
			return b.get(cb.String())
		}, check: func(t *testing.T, e *env, r *response) {
			if loc := r.Header.Get("Location"); !strings.HasPrefix(loc, e.app.URL+"/fhir/?") {
				t.Errorf("the callback sent the browser to %q", loc)
			}
		}},
		{name: "session_fixation", status: 401, code: core.CodeNoLaunch, stored: 1, do: func(t *testing.T, e *env) *response {
			// The attacker plants its own session cookie in the victim's
			// browser; after the victim's launch, that cookie must no
			// longer reach the victim's launch.
			attacker := e.browser()
			attacker.get(e.launchURL("pat-2"))
			appURL, _ := url.Parse(e.app.URL)
			planted := attacker.client.Jar.Cookies(appURL)
			victim := e.browser()
			victim.client.Jar.SetCookies(appURL, planted)
			page := victim.complete("pat-1")
			if got := victim.client.Jar.Cookies(appURL); len(got) == 0 || got[0].Value == planted[0].Value {
				t.Fatal("the session token was not renewed at the callback")
			}
			return attacker.get(page.String())
		}},
		{name: "launch_handle_of_another_session", status: 401, code: core.CodeNoLaunch, stored: 1, do: func(t *testing.T, e *env) *response {
			page := e.browser().complete("pat-1")
			attacker := e.browser()
			attacker.get(e.launchURL("pat-2"))
			return attacker.get(page.String())
		}},
		{name: "launch_handle_guessed", status: 401, code: core.CodeNoLaunch, stored: 1, do: func(t *testing.T, e *env) *response {
			b := e.browser()
			b.complete("pat-1")
			return b.get(e.url("/fhir/?" + adapters.HandleParam + "=" + strings.Repeat("A", 43)))
		}},
		{name: "logged_out_handle", status: 401, code: core.CodeNoLaunch, do: func(t *testing.T, e *env) *response {
			b := e.browser()
			page := b.complete("pat-1")
			req, _ := http.NewRequest(http.MethodPost, e.url("/fhir/logout"), nil)
			resp, err := b.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return b.get(page.String())
		}},

		// --- oversized and malformed input ---
		{name: "oversized_query", status: 400, code: core.CodeInvalidRequest, do: func(t *testing.T, e *env) *response {
			return e.browser().get(e.url("/fhir/launch?launch=" + strings.Repeat("x", 6000) + "&iss=" + url.QueryEscape(e.ehr.FHIRBaseURL())))
		}},
		{name: "oversized_header", status: 431, do: func(t *testing.T, e *env) *response {
			return e.browser().get(e.url("/fhir/launch"), "X-Padding", strings.Repeat("x", 2<<20))
		}},
		{name: "discovery_oversized", status: 502, code: core.CodeDiscoveryFailed, do: func(t *testing.T, e *env) *response {
			e.ehr.SetFaults(smarttest.Faults{Oversize: map[smarttest.Endpoint]int{
				smarttest.EndpointDiscovery: 2 << 20, smarttest.EndpointMetadata: 2 << 20}})
			return e.browser().get(e.launchURL("pat-1"))
		}},
		{name: "token_oversized", status: 502, code: core.CodeTokenExchangeFailed, do: faultAtCallback(oversize(smarttest.EndpointToken))},
		{name: "fhir_oversized", setup: setup{cfg: func(e *env, c *adapters.Config) { c.MaxFHIRResponseBytes = 64 << 10 }},
			status: 502, code: core.CodeFHIRRequestFailed, stored: 1, do: faultAtApp(oversize(smarttest.EndpointFHIR), nil)},
		{name: "discovery_malformed_json", status: 502, code: core.CodeDiscoveryFailed, do: func(t *testing.T, e *env) *response {
			e.ehr.SetFaults(smarttest.Faults{MalformedJSON: map[smarttest.Endpoint]bool{
				smarttest.EndpointDiscovery: true, smarttest.EndpointMetadata: true}})
			return e.browser().get(e.launchURL("pat-1"))
		}},
		{name: "token_malformed_json", status: 502, code: core.CodeTokenExchangeFailed,
			do: faultAtCallback(smarttest.Faults{MalformedJSON: map[smarttest.Endpoint]bool{smarttest.EndpointToken: true}})},
		{name: "jwks_malformed_json", status: 502, code: core.CodeInvalidIDToken,
			do: faultAtCallback(smarttest.Faults{MalformedJSON: map[smarttest.Endpoint]bool{smarttest.EndpointJWKS: true}})},
		{name: "fhir_malformed_json", status: 502, code: core.CodeFHIRRequestFailed, stored: 1,
			do: faultAtApp(smarttest.Faults{MalformedJSON: map[smarttest.Endpoint]bool{smarttest.EndpointFHIR: true}}, nil)},

		// --- a failing EHR ---
		{name: "slow_drip_ehr", setup: setup{cfg: func(e *env, c *adapters.Config) {
			c.HTTPClient.Timeout = 500 * time.Millisecond
			c.MaxRetries = -1
		}}, status: 502, code: core.CodeDiscoveryFailed, do: func(t *testing.T, e *env) *response {
			e.ehr.SetFaults(smarttest.Faults{Drip: 100 * time.Millisecond})
			return e.browser().get(e.launchURL("pat-1"))
		}},
		{name: "token_500_then_200", status: 302, stored: 1,
			do: faultAtCallback(smarttest.Faults{FailTimes: map[smarttest.Endpoint]int{smarttest.EndpointToken: 1}}),
			check: func(t *testing.T, e *env, r *response) {
				if n := e.ehr.Count(smarttest.EndpointToken); n != 2 {
					t.Errorf("token endpoint called %d times, want 2", n)
				}
			}},
		{name: "token_always_500", status: 502, code: core.CodeTokenExchangeFailed,
			do: faultAtCallback(smarttest.Faults{FailTimes: map[smarttest.Endpoint]int{smarttest.EndpointToken: 1000}}),
			check: func(t *testing.T, e *env, r *response) {
				if n := e.ehr.Count(smarttest.EndpointToken); n != 1+e.cfg.MaxRetries {
					t.Errorf("token endpoint called %d times, want %d (bounded retries)", n, 1+e.cfg.MaxRetries)
				}
			}},
		{name: "refresh_token_revoked", status: 401, code: core.CodeRefreshFailed,
			do: faultAtApp(smarttest.Faults{RevokeRefresh: true}, func(e *env) { e.clock.Advance(2 * time.Hour) }),
			check: func(t *testing.T, e *env, r *response) {
				if n := e.ehr.Count(smarttest.EndpointTokenRefresh); n != 1 {
					t.Errorf("%d refresh attempts, want exactly 1 (no retry storm)", n)
				}
			}},
		{name: "fhir_401_forever", status: 401, code: core.CodeLaunchExpired, stored: 1,
			do: faultAtApp(smarttest.Faults{Unauthorized: 1000}, nil),
			check: func(t *testing.T, e *env, r *response) {
				if n := e.ehr.Count(smarttest.EndpointTokenRefresh); n != 1 {
					t.Errorf("%d refreshes for one request answered 401 twice, want 1", n)
				}
			}},
	}
}

// pkceDowngrade serves the EHR behind a proxy whose smart-configuration
// advertises only the "plain" PKCE method (the EHR's own answers
// otherwise); the app must still send S256, and the launch completes.
var pkceDowngrade = attack{
	name: "pkce_downgrade_by_discovery",
	setup: setup{cfg: func(e *env, c *adapters.Config) {
		ehr := smarttest.NewUnstarted(smarttest.Options{Now: e.clock.Now}) // its URLs are the proxy's
		ehr.RegisterClient(smarttest.Client{ID: "app"})
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/.well-known/smart-configuration") {
				ehr.Handler().ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			ehr.Handler().ServeHTTP(rec, r)
			var d map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			d["code_challenge_methods_supported"] = []string{"plain"}
			writeJSON(w, d)
		}))
		e.t.Cleanup(proxy.Close)
		e.ehr, e.iss = ehr, proxy.URL+"/fhir"
		c.Issuers = []core.Issuer{{URL: e.iss}}
	}},
	status: 302, stored: 1,
	do: func(t *testing.T, e *env) *response {
		b := e.browser()
		r := b.get(e.launchURL("pat-1"))
		authz, _ := url.Parse(r.Header.Get("Location"))
		if q := authz.Query(); q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
			t.Errorf("authorize request without S256 PKCE: %v", q)
		}
		r = b.get(authz.String())
		return b.get(r.Header.Get("Location"))
	},
}
