package attacks

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
)

// outboundAttacks lists the attacks on the engine's outbound HTTP: the address guard and a caller's own HTTP client.
func outboundAttacks() []attack {
	return []attack{
		// --- special-purpose addresses the guard must know (IANA registries) ---
		anyIssuerAttack("ssrf_ipv4_compatible_ipv6", "https://[::127.0.0.1]:9/fhir"),
		anyIssuerAttack("ssrf_ipv4_mapped_loopback", "https://[::ffff:127.0.0.1]:9/fhir"),
		anyIssuerAttack("ssrf_nat64_private", "https://[64:ff9b::a00:1]:9/fhir"),
		anyIssuerAttack("ssrf_6to4_private", "https://[2002:7f00:1::1]:9/fhir"),
		anyIssuerAttack("ssrf_broadcast", "https://255.255.255.255:9/fhir"),
		anyIssuerAttack("ssrf_benchmarking", "https://198.18.0.1:9/fhir"),
		anyIssuerAttack("ssrf_reserved_240", "https://240.0.0.1:9/fhir"),

		// --- a caller's own HTTP client keeps the engine's rules ---
		customClientKeepsAddressGuard(),
		customClientKeepsSameOriginRedirect(),
	}
}

// customClientKeepsAddressGuard is ssrf_loopback with an HTTPClient of the
// app's own: the guard is installed in its transport, not dropped.
func customClientKeepsAddressGuard() attack {
	a := anyIssuerAttack("custom_http_client_keeps_address_guard", "https://127.0.0.1:9/fhir")
	a.setup = setup{cfg: func(e *env, c *adapters.Config) {
		c.AllowAnyIssuer, c.Issuers = true, nil
		c.HTTPClient = &http.Client{Transport: &http.Transport{}}
	}}
	return a
}

// customClientKeepsSameOriginRedirect is an EHR whose discovery redirects
// to another origin, and an app client whose own CheckRedirect follows
// anything: the engine's same-origin rule still refuses the redirect.
func customClientKeepsSameOriginRedirect() attack {
	var reached atomic.Int32
	return attack{
		name: "custom_http_client_keeps_same_origin_redirect",
		setup: setup{cfg: func(e *env, c *adapters.Config) {
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached.Add(1)
				http.NotFound(w, r)
			}))
			e.t.Cleanup(other.Close)
			ehr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
			}))
			e.t.Cleanup(ehr.Close)
			e.iss = ehr.URL + "/fhir"
			c.Issuers = []core.Issuer{{URL: e.iss}}
			c.HTTPClient = &http.Client{Transport: e.tok, Timeout: 5 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
		}},
		status: 502, code: core.CodeDiscoveryFailed,
		do: func(t *testing.T, e *env) *response {
			return e.browser().get(e.url("/fhir/launch?launch=x&iss=" + url.QueryEscape(e.iss)))
		},
		check: func(t *testing.T, e *env, r *response) {
			if n := reached.Load(); n != 0 {
				t.Errorf("discovery followed the redirect to another origin %d times", n)
			}
		},
	}
}
