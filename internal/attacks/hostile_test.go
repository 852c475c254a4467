package attacks

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// hostileEHRAttacks lists the attacks by an EHR the app accepts but that is hostile: mix-up, forged identity, secrets and redirects.
func hostileEHRAttacks() []attack {
	return []attack{
		// Case 1: the mix-up. The attacker's discovery claims the honest
		// EHR's issuer and keys with its own authorize and token
		// endpoints, and forwards the victim to the honest EHR.
		hostileRow{name: "mixup_token_theft_any_issuer", mode: anyIssuer, discovery: claimHonestIssuer,
			status: 502, code: core.CodeDiscoveryFailed}.attack(),
		hostileRow{name: "mixup_token_theft_allowlist", mode: allowlist, discovery: claimHonestIssuer,
			status: 502, code: core.CodeDiscoveryFailed}.attack(),
		hostileRow{name: "mixup_token_theft_allowlist_with_iss", mode: allowlist, discovery: claimHonestIssuer, iss: true,
			status: 502, code: core.CodeDiscoveryFailed}.attack(),
		hostileRow{name: "mixup_honest_authorize_own_token_endpoint", mode: anyIssuer, discovery: honestTokenEndpoint,
			status: 502, code: core.CodeDiscoveryFailed}.attack(),
		// The classic mix-up: a discovery entirely on the attacker's
		// origin, forwarding the victim to the honest EHR.
		hostileRow{name: "mixup_own_origin_with_iss", mode: allowlist, discovery: ownOrigin, iss: true,
			status: 400, code: core.CodeInvalidRequest}.attack(),
		hostileRow{name: "mixup_own_origin_without_iss", mode: allowlist, discovery: ownOrigin,
			status: 400, code: core.CodeInvalidRequest}.attack(),
		hostileRow{name: "mixup_own_origin_without_iss_any_issuer", mode: anyIssuer, discovery: ownOrigin,
			status: 400, code: core.CodeInvalidRequest}.attack(),
		// With a redirect URI per issuer the callback proves its server
		// even without iss: the attacker must put the honest EHR's
		// redirect URI in the request it forwards, and the callback
		// then comes to the wrong one for the launch.
		hostileRow{name: "mixup_distinct_redirect_uri", mode: distinctCallbacks, discovery: ownOrigin, rewriteRedirect: true,
			status: 400, code: core.CodeInvalidRequest}.attack(),

		// Case 2: a forged identity. The attacker claims the honest
		// issuer with its own key set and signs {iss: honest, sub: anyone}.
		hostileRow{name: "forged_identity_any_issuer", mode: anyIssuer, discovery: claimHonestIssuerOwnKeys, forge: true,
			status: 502, code: core.CodeDiscoveryFailed}.attack(),
		hostileRow{name: "forged_identity_allowlist", mode: allowlist, discovery: claimHonestIssuerOwnKeys, forge: true,
			status: 502, code: core.CodeDiscoveryFailed}.attack(),

		// Case 3: the app's secret sent to whatever token endpoint an
		// unknown issuer names.
		hostileRow{name: "default_issuer_secret_basic", mode: anyIssuer, discovery: ownOrigin, forge: true,
			auth:    core.ClientAuth{Secret: "app-secret"},
			refused: core.CodeInvalidConfig}.attack(),
		hostileRow{name: "default_issuer_secret_post", mode: anyIssuer, discovery: ownOrigin, forge: true,
			auth:    core.ClientAuth{Secret: "app-secret", AuthStyle: oauth2.AuthStyleInParams},
			refused: core.CodeInvalidConfig}.attack(),
		hostileRow{name: "default_issuer_header", mode: anyIssuer, discovery: ownOrigin, forge: true,
			header:  http.Header{"Authorization": {"Bearer app-api-key"}},
			refused: core.CodeInvalidConfig}.attack(),

		// Case 4: the launch route as an open redirect.
		hostileRow{name: "open_redirect_any_issuer", mode: anyIssuer, discovery: elsewhere,
			status: 502, code: core.CodeDiscoveryFailed}.attack(),

		dynamicIssuerOnConfiguredOrigin,

		// The mix-up followed by code injection: client authentication
		// does not stop it, since the app itself redeems the injected
		// code with the honest EHR's credentials.
		codeInjection("mixup_code_injection_client_secret", false),
		codeInjection("mixup_code_injection_private_key_jwt_any_issuer", true),
	}
}

// hostileMode is how the app accepts the hostile EHR.
type hostileMode int

const (
	allowlist         hostileMode = iota // Issuers: [honest, hostile]
	anyIssuer                            // Issuers: [honest], AllowAnyIssuer
	distinctCallbacks                    // allowlist, each issuer with its own CallbackURL
)

// hostileRow is one attack by a hostile EHR on an app that also accepts
// the env's honest EHR.
type hostileRow struct {
	name            string
	mode            hostileMode
	discovery       func(*hostileEHR) map[string]any
	forge           bool // the attacker answers the authorize request itself
	iss             bool // the honest EHR sends RFC 9207 iss
	rewriteRedirect bool // the forwarded request names the honest EHR's redirect URI
	auth            core.ClientAuth
	header          http.Header
	refused         core.Code // New must refuse the configuration
	status          int
	code            core.Code
}

func (h hostileRow) attack() attack {
	var hostile *hostileEHR
	return attack{
		name:   h.name,
		status: h.status, code: h.code,
		setup: setup{
			ehr:          smarttest.Options{AuthorizationResponseIss: h.iss},
			refusedByNew: h.refused,
			cfg: func(e *env, c *adapters.Config) {
				hostile = newHostileEHR(e.t, e.ehr)
				hostile.discovery, hostile.forge = h.discovery, h.forge
				honest := core.Issuer{URL: e.ehr.FHIRBaseURL()}
				evil := core.Issuer{URL: hostile.FHIRBaseURL()}
				switch h.mode {
				case allowlist:
					c.Issuers = []core.Issuer{honest, evil}
				case anyIssuer:
					c.Issuers, c.AllowAnyIssuer, c.AllowPrivateNetworks = []core.Issuer{honest}, true, true
					c.DefaultIssuer = core.Issuer{Auth: h.auth, Header: h.header}
				case distinctCallbacks:
					honest.CallbackURL = c.CallbackURL + "?ehr=honest"
					evil.CallbackURL = c.CallbackURL + "?ehr=other"
					c.Issuers = []core.Issuer{honest, evil}
					e.ehr.RegisterClient(smarttest.Client{ID: "app", RedirectURIs: []string{honest.CallbackURL}})
					if h.rewriteRedirect {
						hostile.redirectURI = honest.CallbackURL
					}
				}
			},
		},
		do: func(t *testing.T, e *env) *response {
			b := e.browser()
			return b.followAll(e.hostileLaunchURL(hostile, "pat-1"))
		},
		check: func(t *testing.T, e *env, r *response) {
			if n := hostile.TokenRequests(); n != 0 {
				t.Errorf("%d token requests reached the hostile EHR", n)
			}
			if n := hostile.StolenReads(); n != 0 {
				t.Errorf("the hostile EHR read the honest EHR's patient with a stolen token")
			}
			if s := hostile.Secrets(); len(s) != 0 {
				t.Errorf("the hostile EHR was sent the app's credentials: %d values", len(s))
			}
			if loc := r.Header.Get("Location"); loc != "" {
				t.Errorf("the app sent the browser to %s", loc)
			}
			if strings.Contains(r.body, "victim-admin") {
				t.Error("the forged identity reached the page")
			}
		},
	}
}

// dynamicIssuerOnConfiguredOrigin: with AllowAnyIssuer, an unknown issuer
// served from the origin of a configured one (another path of the same
// host) could declare the configured issuer's identity; it is refused
// before any request.
var dynamicIssuerOnConfiguredOrigin = func() attack {
	var (
		shared  *httptest.Server
		hostile *hostileEHR
	)
	return attack{
		name:   "dynamic_issuer_on_configured_origin",
		status: 403, code: core.CodeUnknownIssuer,
		setup: setup{cfg: func(e *env, c *adapters.Config) {
			// One origin serves an honest EHR at /fhir and /auth, and the
			// attacker's discovery at /evil/fhir claiming that EHR.
			honest := smarttest.NewUnstarted(smarttest.Options{Now: e.clock.Now})
			honest.RegisterClient(smarttest.Client{ID: "app"})
			hostile = newHostileEHR(e.t, honest)
			mux := http.NewServeMux()
			mux.Handle("/evil/", http.StripPrefix("/evil", hostile.srv.Config.Handler))
			mux.Handle("/", honest.Handler())
			shared = httptest.NewServer(mux)
			e.t.Cleanup(shared.Close)
			c.Issuers = []core.Issuer{{URL: shared.URL + "/fhir"}}
			c.AllowAnyIssuer, c.AllowPrivateNetworks = true, true
		}},
		do: func(t *testing.T, e *env) *response {
			return e.browser().followAll(e.url("/fhir/launch?launch=x&iss=" + url.QueryEscape(shared.URL+"/evil/fhir")))
		},
		check: func(t *testing.T, e *env, r *response) {
			if n := hostile.TokenRequests(); n != 0 {
				t.Errorf("%d token requests reached the hostile EHR", n)
			}
		},
	}
}()
