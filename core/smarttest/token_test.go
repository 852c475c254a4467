package smarttest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/internal/testclock"
	"github.com/go-jose/go-jose/v4"
)

func TestTokenClientAuthentication(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, smarttest.Options{})
	s.RegisterClient(smarttest.Client{ID: "basic", Auth: smarttest.AuthClientSecretBasic, Secret: "s3cret:+&", RedirectURIs: []string{callback}})
	s.RegisterClient(smarttest.Client{ID: "post", Auth: smarttest.AuthClientSecretPost, Secret: "p0st"})
	s.RegisterClient(smarttest.Client{ID: "rsa", Auth: smarttest.AuthPrivateKeyJWT, PublicKey: rsaKey.Public()})
	s.RegisterClient(smarttest.Client{ID: "ec", Auth: smarttest.AuthPrivateKeyJWT, PublicKey: ecKey.Public()})

	claims := func(client string, kv ...any) map[string]any {
		return assertionClaims(s.TokenURL(), client, 2*time.Minute, kv...)
	}
	jwtForm := func(a string) []string {
		return []string{"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion", a}
	}
	replayed := assertion(t, rsaKey, jose.RS384, claims("rsa"))

	tests := []struct {
		name       string
		client     string
		form       []string
		user, pass string
		want       int
	}{
		{name: "public", client: "app", form: []string{"client_id", "app"}, want: 200},
		{name: "public with secret", client: "app", form: []string{"client_id", "app", "client_secret", "x"}, want: 401},
		{name: "basic", client: "basic", user: "basic", pass: "s3cret:+&", want: 200},
		{name: "basic wrong secret", client: "basic", user: "basic", pass: "nope", want: 401},
		{name: "basic as post", client: "basic", form: []string{"client_id", "basic", "client_secret", "s3cret:+&"}, want: 401},
		{name: "post", client: "post", form: []string{"client_id", "post", "client_secret", "p0st"}, want: 200},
		{name: "post wrong secret", client: "post", form: []string{"client_id", "post", "client_secret", "x"}, want: 401},
		{name: "post as public", client: "post", form: []string{"client_id", "post"}, want: 401},
		{name: "jwt RS384", client: "rsa", form: jwtForm(assertion(t, rsaKey, jose.RS384, claims("rsa"))), want: 200},
		{name: "jwt ES384", client: "ec", form: jwtForm(assertion(t, ecKey, jose.ES384, claims("ec"))), want: 200},
		{name: "jwt RS256 refused", client: "rsa", form: jwtForm(assertion(t, rsaKey, jose.RS256, claims("rsa"))), want: 401},
		{name: "jwt other key", client: "ec", form: jwtForm(assertion(t, rsaKey, jose.RS384, claims("ec"))), want: 401},
		{name: "jwt wrong aud", client: "rsa", form: jwtForm(assertion(t, rsaKey, jose.RS384, claims("rsa", "aud", s.FHIRBaseURL()))), want: 401},
		{name: "jwt sub differs", client: "rsa", form: jwtForm(assertion(t, rsaKey, jose.RS384, claims("rsa", "sub", "other"))), want: 401},
		{name: "jwt no exp", client: "rsa", form: jwtForm(assertion(t, rsaKey, jose.RS384, claims("rsa", "exp", nil))), want: 401},
		{name: "jwt exp too far", client: "rsa", form: jwtForm(assertion(t, rsaKey, jose.RS384, claims("rsa", "exp", time.Now().Add(10*time.Minute).Unix()))), want: 401},
		{name: "jwt expired", client: "rsa", form: jwtForm(assertion(t, rsaKey, jose.RS384, claims("rsa", "exp", time.Now().Add(-time.Minute).Unix()))), want: 401},
		{name: "jwt no jti", client: "rsa", form: jwtForm(assertion(t, rsaKey, jose.RS384, claims("rsa", "jti", nil))), want: 401},
		{name: "unknown client", client: "app", form: []string{"client_id", "nobody"}, want: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pk := newPKCE()
			c := code(t, s, authParams(s, tc.client, pk))
			status, body := postToken(t, s, codeForm(c, pk, tc.form...), tc.user, tc.pass)
			if status != tc.want {
				t.Fatalf("status %d, want %d: %v", status, tc.want, body)
			}
			if tc.want == 401 && body["error"] != "invalid_client" {
				t.Errorf("error = %v, want invalid_client", body["error"])
			}
			if tc.want == 200 && (str(body["access_token"]) == "" || body["token_type"] != "Bearer") {
				t.Errorf("token response %v", body)
			}
		})
	}

	t.Run("jti replay", func(t *testing.T) {
		t.Parallel()
		for i, want := range []int{200, 401} {
			pk := newPKCE()
			c := code(t, s, authParams(s, "rsa", pk))
			if status, body := postToken(t, s, codeForm(c, pk, jwtForm(replayed)...), "", ""); status != want {
				t.Fatalf("use %d: status %d, want %d: %v", i+1, status, want, body)
			}
		}
	})
}

func TestTokenCodeChecks(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	s.RegisterClient(smarttest.Client{ID: "other"})
	tests := []struct {
		name string
		form func(c string, pk pkce) url.Values
	}{
		{"wrong verifier", func(c string, pk pkce) url.Values {
			return codeForm(c, newPKCE(), "client_id", "app")
		}},
		{"no verifier", func(c string, pk pkce) url.Values {
			f := codeForm(c, pk, "client_id", "app")
			f.Del("code_verifier")
			return f
		}},
		{"other redirect_uri", func(c string, pk pkce) url.Values {
			return codeForm(c, pk, "client_id", "app", "redirect_uri", "http://app.example/other")
		}},
		{"other client", func(c string, pk pkce) url.Values {
			return codeForm(c, pk, "client_id", "other")
		}},
		{"unknown code", func(c string, pk pkce) url.Values {
			return codeForm("made-up", pk, "client_id", "app")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pk := newPKCE()
			c := code(t, s, authParams(s, "app", pk))
			status, body := postToken(t, s, tc.form(c, pk), "", "")
			if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
				t.Fatalf("got %d %v, want 400 invalid_grant", status, body)
			}
		})
	}
}

func TestTokenCodeSingleUseAndExpiry(t *testing.T) {
	t.Parallel()
	now := testclock.New()
	s := start(t, smarttest.Options{Now: now.Now})

	pk := newPKCE()
	c := code(t, s, authParams(s, "app", pk))
	status, tok := postToken(t, s, codeForm(c, pk, "client_id", "app"), "", "")
	if status != 200 {
		t.Fatalf("first exchange: %d %v", status, tok)
	}
	if status, body := postToken(t, s, codeForm(c, pk, "client_id", "app"), "", ""); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("second exchange: %d %v, want 400 invalid_grant", status, body)
	}
	// Reusing the code revoked the tokens it gave.
	if resp, _ := fhir(t, s, str(tok["access_token"]), "GET", "/Patient/pat-1", nil); resp.StatusCode != 401 {
		t.Errorf("token of a replayed code: status %d, want 401", resp.StatusCode)
	}

	pk = newPKCE()
	c = code(t, s, authParams(s, "app", pk))
	now.Advance(61 * time.Second)
	if status, body := postToken(t, s, codeForm(c, pk, "client_id", "app"), "", ""); status != 400 {
		t.Fatalf("expired code: %d %v, want 400", status, body)
	}
}

func TestTokenResponseContext(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{AccessTokenLifetime: 5 * time.Minute})
	launch := s.NewLaunch(smarttest.LaunchContext{
		Patient: "pat-2", Encounter: "enc-3", FHIRUser: s.FHIRBaseURL() + "/Practitioner/prac-2",
		FHIRContext:       []map[string]any{{"reference": "Condition/cond-3"}},
		NeedPatientBanner: true, SmartStyleURL: "https://ehr.example/style.json",
		Intent: "reconcile", Tenant: "t-1", Extra: map[string]any{"vendor_field": 42.0},
	})
	tok := login(t, s, "launch", launch)
	want := map[string]any{
		"patient": "pat-2", "encounter": "enc-3", "need_patient_banner": true,
		"smart_style_url": "https://ehr.example/style.json", "intent": "reconcile", "tenant": "t-1",
		"vendor_field": 42.0, "scope": defaultScope, "expires_in": 300.0, "token_type": "Bearer",
	}
	for k, v := range want {
		if tok[k] != v {
			t.Errorf("%s = %v, want %v", k, tok[k], v)
		}
	}
	if fc, _ := tok["fhirContext"].([]any); len(fc) != 1 {
		t.Errorf("fhirContext = %v", tok["fhirContext"])
	}
	if str(tok["refresh_token"]) == "" || str(tok["id_token"]) == "" {
		t.Errorf("missing refresh_token or id_token: %v", tok)
	}
	claims, err := verifyIDToken(t, s, str(tok["id_token"]))
	if err != nil {
		t.Fatal(err)
	}
	if claims["fhirUser"] != s.FHIRBaseURL()+"/Practitioner/prac-2" || claims["iss"] != s.AuthIssuer() ||
		claims["aud"] != "app" || claims["nonce"] != "nonce-1" || str(claims["sub"]) == "" {
		t.Errorf("id_token claims %v", claims)
	}

	// No openid, no offline_access: no id_token, no refresh token.
	tok = login(t, s, "scope", "launch/patient patient/*.rs")
	if _, ok := tok["id_token"]; ok {
		t.Error("id_token without openid scope")
	}
	if _, ok := tok["refresh_token"]; ok {
		t.Error("refresh_token without offline_access or online_access")
	}
	if tok["patient"] != "pat-1" {
		t.Errorf("standalone patient = %v, want pat-1", tok["patient"])
	}
}

func TestTokenUnsupportedGrant(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	status, body := postToken(t, s, url.Values{"grant_type": {"password"}, "client_id": {"app"}}, "", "")
	if status != 400 || body["error"] != "unsupported_grant_type" {
		t.Fatalf("got %d %v", status, body)
	}
}

// assertionClaims are the claims of a client assertion for client at the
// token endpoint aud, expiring in exp, with the name, value pairs of kv
// set over them (a nil value removes the claim).
func assertionClaims(aud, client string, exp time.Duration, kv ...any) map[string]any {
	c := map[string]any{
		"iss": client, "sub": client, "aud": aud, "jti": rand.Text(),
		"exp": time.Now().Add(exp).Unix(),
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}
