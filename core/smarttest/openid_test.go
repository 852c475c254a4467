package smarttest_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/fhirware/smart/core/smarttest"
)

type openIDConfiguration struct {
	Issuer                string   `json:"issuer"`
	JWKSURI               string   `json:"jwks_uri"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	ResponseTypes         []string `json:"response_types_supported"`
	SubjectTypes          []string `json:"subject_types_supported"`
	SigningAlgs           []string `json:"id_token_signing_alg_values_supported"`
}

// The authorization server publishes an OpenID Connect Discovery 1.0
// document under its issuer, with the fields the specification requires,
// unless NoOpenIDConfiguration.
func TestOpenIDConfiguration(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{NoSmartConfiguration: true, IDTokenAlg: "ES384"})
	var c openIDConfiguration
	resp := getJSON(t, s.AuthIssuer()+"/.well-known/openid-configuration", &c)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if c.Issuer != s.AuthIssuer() || c.JWKSURI != s.JWKSURL() || c.AuthorizationEndpoint != s.AuthorizeURL() || c.TokenEndpoint != s.TokenURL() {
		t.Errorf("configuration %+v", c)
	}
	if !slices.Equal(c.ResponseTypes, []string{"code"}) || !slices.Equal(c.SubjectTypes, []string{"public"}) || !slices.Equal(c.SigningAlgs, []string{"ES384"}) {
		t.Errorf("configuration %+v", c)
	}
	if n := s.Count(smarttest.EndpointOpenIDConfiguration); n != 1 {
		t.Errorf("count %d", n)
	}

	s = start(t, smarttest.Options{NoOpenIDConfiguration: true})
	if resp := getJSON(t, s.AuthIssuer()+"/.well-known/openid-configuration", &c); resp.StatusCode != http.StatusNotFound {
		t.Errorf("with NoOpenIDConfiguration: status %d, want 404", resp.StatusCode)
	}
}

// DocumentFields sets and removes top-level fields of the discovery
// documents; the others stay.
func TestDocumentFields(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	fields := map[smarttest.Endpoint]map[string]any{
		smarttest.EndpointDiscovery:           {"issuer": nil, "jwks_uri": "https://evil.example/jwks"},
		smarttest.EndpointOpenIDConfiguration: {"issuer": "https://evil.example"},
		smarttest.EndpointMetadata:            {"fhirVersion": "3.0.2"},
	}
	s.SetFaults(smarttest.Faults{DocumentFields: fields})
	fields[smarttest.EndpointDiscovery]["issuer"] = "changed after SetFaults"
	var sc map[string]any
	getJSON(t, s.FHIRBaseURL()+"/.well-known/smart-configuration", &sc)
	if _, ok := sc["issuer"]; ok || sc["jwks_uri"] != "https://evil.example/jwks" || sc["token_endpoint"] != s.TokenURL() {
		t.Errorf("smart-configuration %v", sc)
	}
	var oc openIDConfiguration
	getJSON(t, s.AuthIssuer()+"/.well-known/openid-configuration", &oc)
	if oc.Issuer != "https://evil.example" || oc.JWKSURI != s.JWKSURL() {
		t.Errorf("OpenID configuration %+v", oc)
	}
	var cs map[string]any
	getJSON(t, s.FHIRBaseURL()+"/metadata", &cs)
	if cs["fhirVersion"] != "3.0.2" || cs["resourceType"] != "CapabilityStatement" {
		t.Errorf("CapabilityStatement fhirVersion %v", cs["fhirVersion"])
	}
	s.SetFaults(smarttest.Faults{})
	getJSON(t, s.FHIRBaseURL()+"/metadata", &cs)
	if cs["fhirVersion"] != "4.0.1" {
		t.Errorf("without the fault: fhirVersion %v", cs["fhirVersion"])
	}
}

// The FHIR server records the Accept headers it sees, and refuses (406)
// a FHIR version other than its own, 4.0 (4.0.1).
func TestFHIRAcceptsAndVersion(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	tok, err := s.IssueAccessToken("app", "patient/*.rs", smarttest.LaunchContext{Patient: "pat-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		accept string
		status int
	}{
		{"", http.StatusOK},
		{"application/fhir+json", http.StatusOK},
		{"application/fhir+json; fhirVersion=4.0", http.StatusOK},
		{"application/fhir+json;fhirVersion=\"4.0\", application/json", http.StatusOK},
		{"application/fhir+json; fhirVersion=3.0", http.StatusNotAcceptable},
		{"application/json, application/fhir+json; fhirVersion=5.0", http.StatusNotAcceptable},
	} {
		resp, body := fhir(t, s, tok, http.MethodGet, "/Patient/pat-1", nil, "Accept", tc.accept)
		if resp.StatusCode != tc.status {
			t.Errorf("Accept %q: status %d, want %d (%v)", tc.accept, resp.StatusCode, tc.status, body)
		}
		if tc.status == http.StatusNotAcceptable && body["resourceType"] != "OperationOutcome" {
			t.Errorf("Accept %q: %v, want an OperationOutcome", tc.accept, body)
		}
		if got := s.FHIRAccepts(); got[len(got)-1] != tc.accept {
			t.Errorf("FHIRAccepts ends with %q, want %q", got[len(got)-1], tc.accept)
		}
	}
	if n := len(s.FHIRAccepts()); n != 6 {
		t.Errorf("%d Accept headers recorded, want 6", n)
	}
}
