package smarttest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fhirware/smart/core/smarttest"
)

// TestClientCredentials plays SMART Backend Services against the token
// endpoint: a client registered by its JWKS gets a system token for the
// system scopes it is registered for, which reads any patient; every
// check refuses with its OAuth error, and is listed in Refusals.
func TestClientCredentials(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, smarttest.Options{})
	jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "client-key", Use: "sig"}}}
	s.RegisterClient(smarttest.Client{ID: "backend", Auth: smarttest.AuthPrivateKeyJWT, JWKS: jwks, SystemScope: "system/Patient.rs system/Observation.read"})
	s.RegisterClient(smarttest.Client{ID: "no-system", Auth: smarttest.AuthPrivateKeyJWT, JWKS: jwks})
	s.RegisterClient(smarttest.Client{ID: "secret", Auth: smarttest.AuthClientSecretBasic, Secret: "s", SystemScope: "system/*.rs"})

	claims := func(client string, kv ...any) map[string]any {
		return assertionClaims(s.TokenURL(), client, 4*time.Minute, kv...)
	}
	form := func(scope string, c map[string]any) url.Values {
		return url.Values{
			"grant_type":            {"client_credentials"},
			"scope":                 {scope},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {assertion(t, key, jose.ES384, c)},
		}
	}

	status, tok := postToken(t, s, form("system/Patient.rs system/Observation.rs", claims("backend")), "", "")
	if status != http.StatusOK {
		t.Fatalf("client_credentials: %d %v", status, tok)
	}
	if tok["scope"] != "system/Patient.rs system/Observation.rs" || tok["token_type"] != "Bearer" || tok["expires_in"] == nil {
		t.Errorf("token response %v", tok)
	}
	for _, k := range []string{"refresh_token", "id_token", "patient", "need_patient_banner"} {
		if _, ok := tok[k]; ok {
			t.Errorf("a system token response has %s", k)
		}
	}
	for _, id := range []string{"pat-1", "pat-3"} {
		if resp, p := fhir(t, s, str(tok["access_token"]), http.MethodGet, "/Patient/"+id, nil); resp.StatusCode != 200 || p["id"] != id {
			t.Errorf("system token reading Patient/%s: %d %v", id, resp.StatusCode, p)
		}
	}

	replayed := form("system/Patient.rs", claims("backend"))
	if status, body := postToken(t, s, replayed, "", ""); status != 200 {
		t.Fatalf("first use of an assertion: %d %v", status, body)
	}
	s.ResetCounts()
	tests := []struct {
		name       string
		form       url.Values
		user, pass string
		status     int
		error, why string
	}{
		{"sub is not iss", form("system/Patient.rs", claims("backend", "sub", "other")), "", "", 401, "invalid_client", "iss and sub must be the client id"},
		{"aud is another URL", form("system/Patient.rs", claims("backend", "aud", s.URL()+"/auth/other")), "", "", 401, "invalid_client", "aud must be"},
		{"exp missing", form("system/Patient.rs", claims("backend", "exp", nil)), "", "", 401, "invalid_client", "exp is missing"},
		{"exp passed", form("system/Patient.rs", claims("backend", "exp", time.Now().Add(-time.Minute).Unix())), "", "", 401, "invalid_client", "expired"},
		{"exp too far", form("system/Patient.rs", claims("backend", "exp", time.Now().Add(6*time.Minute).Unix())), "", "", 401, "invalid_client", "more than five minutes ahead"},
		{"jti missing", form("system/Patient.rs", claims("backend", "jti", nil)), "", "", 401, "invalid_client", "jti is missing"},
		{"jti used", replayed, "", "", 401, "invalid_client", "jti was already used"},
		{"scope not registered", form("system/Condition.rs", claims("backend")), "", "", 400, "invalid_scope", "not registered for system/Condition.rs"},
		{"more than registered", form("system/Observation.cruds", claims("backend")), "", "", 400, "invalid_scope", "not registered for system/Observation.cruds"},
		{"a patient scope", form("patient/*.rs", claims("backend")), "", "", 400, "invalid_scope", "system/ scopes only"},
		{"no scope", form("", claims("backend")), "", "", 400, "invalid_scope", "scope is missing"},
		{"no system scope registered", form("system/Patient.rs", claims("no-system")), "", "", 400, "unauthorized_client", "not registered for client_credentials"},
		{"a client with a secret", url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Patient.rs"}}, "secret", "s", 400, "unauthorized_client", "private_key_jwt"},
	}
	for _, tc := range tests {
		status, body := postToken(t, s, tc.form, tc.user, tc.pass)
		if status != tc.status || body["error"] != tc.error || !strings.Contains(str(body["error_description"]), tc.why) {
			t.Errorf("%s: %d %v, want %d %s saying %q", tc.name, status, body, tc.status, tc.error, tc.why)
		}
	}
	refusals := s.Refusals(smarttest.EndpointTokenClientCredentials)
	if len(refusals) != len(tests) || s.Count(smarttest.EndpointTokenClientCredentials) != len(tests) {
		t.Fatalf("%d refusals of %d requests listed, want %d", len(refusals), s.Count(smarttest.EndpointTokenClientCredentials), len(tests))
	}
	for i, r := range refusals {
		if r.Code != tests[i].error {
			t.Errorf("refusal %d is %q, want %q", i, r.Code, tests[i].error)
		}
	}
	if n := len(s.Refusals(smarttest.EndpointToken)); n != len(tests) {
		t.Errorf("EndpointToken lists %d refusals, want %d", n, len(tests))
	}
	s.ResetCounts()
	if n := len(s.Refusals(smarttest.EndpointTokenClientCredentials)); n != 0 {
		t.Errorf("ResetCounts left %d refusals", n)
	}
}
