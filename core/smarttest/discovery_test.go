package smarttest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/fhirware/smart/core/smarttest"
	"github.com/go-jose/go-jose/v4"
)

func getJSON(t *testing.T, u string, v any) *http.Response {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
	}
	return resp
}

type smartConfiguration struct {
	Issuer                 string   `json:"issuer"`
	JWKSURI                string   `json:"jwks_uri"`
	AuthorizationEndpoint  string   `json:"authorization_endpoint"`
	TokenEndpoint          string   `json:"token_endpoint"`
	AuthMethods            []string `json:"token_endpoint_auth_methods_supported"`
	SigningAlgs            []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	Capabilities           []string `json:"capabilities"`
	CodeChallengeMethods   []string `json:"code_challenge_methods_supported"`
	ResponseIssSupported   bool     `json:"authorization_response_iss_parameter_supported"`
	ResponseTypesSupported []string `json:"response_types_supported"`
}

func TestSmartConfiguration(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{AuthorizationResponseIss: true})
	var c smartConfiguration
	resp := getJSON(t, s.FHIRBaseURL()+"/.well-known/smart-configuration", &c)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if c.Issuer != s.AuthIssuer() || c.Issuer == s.FHIRBaseURL() {
		t.Errorf("issuer %q, want %q", c.Issuer, s.AuthIssuer())
	}
	if c.AuthorizationEndpoint != s.AuthorizeURL() || c.TokenEndpoint != s.TokenURL() || c.JWKSURI != s.JWKSURL() {
		t.Errorf("endpoints %+v", c)
	}
	for _, m := range []string{"private_key_jwt", "client_secret_basic", "client_secret_post", "none"} {
		if !slices.Contains(c.AuthMethods, m) {
			t.Errorf("auth method %s missing", m)
		}
	}
	for _, cap := range []string{"launch-ehr", "launch-standalone", "client-confidential-asymmetric", "sso-openid-connect", "permission-offline"} {
		if !slices.Contains(c.Capabilities, cap) {
			t.Errorf("capability %s missing", cap)
		}
	}
	if !slices.Equal(c.CodeChallengeMethods, []string{"S256"}) || !slices.Equal(c.SigningAlgs, []string{"RS384", "ES384"}) ||
		!slices.Equal(c.ResponseTypesSupported, []string{"code"}) || !c.ResponseIssSupported {
		t.Errorf("configuration %+v", c)
	}
	if s.Count(smarttest.EndpointDiscovery) != 1 {
		t.Errorf("discovery count %d", s.Count(smarttest.EndpointDiscovery))
	}
}

// oauthURIs returns the authorize and token URIs of a CapabilityStatement.
func oauthURIs(t *testing.T, cs map[string]any) (authorize, token string) {
	t.Helper()
	rest := cs["rest"].([]any)[0].(map[string]any)
	for _, e := range rest["security"].(map[string]any)["extension"].([]any) {
		ext := e.(map[string]any)
		if ext["url"] != "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris" {
			continue
		}
		for _, sub := range ext["extension"].([]any) {
			m := sub.(map[string]any)
			switch m["url"] {
			case "authorize":
				authorize = str(m["valueUri"])
			case "token":
				token = str(m["valueUri"])
			}
		}
	}
	return authorize, token
}

func TestMetadataFallback(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{NoSmartConfiguration: true})
	var c smartConfiguration
	if resp := getJSON(t, s.FHIRBaseURL()+"/.well-known/smart-configuration", &c); resp.StatusCode != 404 {
		t.Errorf("smart-configuration status %d, want 404", resp.StatusCode)
	}
	var cs map[string]any
	resp := getJSON(t, s.FHIRBaseURL()+"/metadata", &cs)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/fhir+json" {
		t.Fatalf("metadata: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if cs["resourceType"] != "CapabilityStatement" {
		t.Fatalf("resourceType %v", cs["resourceType"])
	}
	a, tok := oauthURIs(t, cs)
	if a != s.AuthorizeURL() || tok != s.TokenURL() {
		t.Errorf("oauth-uris %q %q", a, tok)
	}
}

func TestRelativeEndpoints(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{RelativeEndpoints: true})
	discovery := s.FHIRBaseURL() + "/.well-known/smart-configuration"
	var c smartConfiguration
	getJSON(t, discovery, &c)
	var cs map[string]any
	getJSON(t, s.FHIRBaseURL()+"/metadata", &cs)
	a, tok := oauthURIs(t, cs)

	resolve := func(base, ref string) string {
		b, _ := url.Parse(base)
		r, err := url.Parse(ref)
		if err != nil {
			t.Fatal(err)
		}
		return b.ResolveReference(r).String()
	}
	if c.Issuer != s.AuthIssuer() {
		t.Errorf("issuer %q must stay absolute", c.Issuer)
	}
	for _, base := range []string{s.FHIRBaseURL(), s.FHIRBaseURL() + "/", discovery} {
		if got := resolve(base, c.TokenEndpoint); got != s.TokenURL() || c.TokenEndpoint == s.TokenURL() {
			t.Errorf("token_endpoint %q against %s = %s", c.TokenEndpoint, base, got)
		}
	}
	for _, base := range []string{s.FHIRBaseURL(), s.FHIRBaseURL() + "/", s.FHIRBaseURL() + "/metadata"} {
		if got := resolve(base, a); got != s.AuthorizeURL() || a == s.AuthorizeURL() {
			t.Errorf("authorize %q against %s = %s", a, base, got)
		}
		if got := resolve(base, tok); got != s.TokenURL() {
			t.Errorf("token %q against %s = %s", tok, base, got)
		}
	}
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts smarttest.Options
		kids []string
	}{
		{smarttest.Options{}, []string{"rsa-1", "ec-1", "ec-2"}},
		{smarttest.Options{OmitKID: true, IDTokenAlg: "ES256"}, []string{""}},
	} {
		s := start(t, tc.opts)
		var set jose.JSONWebKeySet
		getJSON(t, s.JWKSURL(), &set)
		var kids []string
		for _, k := range set.Keys {
			if !k.IsPublic() {
				t.Errorf("key %q is not public", k.KeyID)
			}
			kids = append(kids, k.KeyID)
		}
		if !slices.Equal(kids, tc.kids) {
			t.Errorf("kids %q, want %q", kids, tc.kids)
		}
	}
}
