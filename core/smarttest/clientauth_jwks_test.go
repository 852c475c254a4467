package smarttest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/fhirware/smart/core/smarttest"
)

// TestTokenClientJWKS authenticates clients registered by JWKS URL: the
// assertion's kid picks the key, and a key that is not a public signing
// key for the assertion's algorithm is refused.
func TestTokenClientJWKS(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: rsaKey.Public(), KeyID: "rsa", Algorithm: "RS384", Use: "sig"},
		{Key: ecKey.Public(), KeyID: "ec"}, // alg and use are optional
		{Key: rsaKey.Public(), KeyID: "enc", Algorithm: "RS384", Use: "enc"},
		{Key: rsaKey.Public(), KeyID: "rs256", Algorithm: "RS256", Use: "sig"},
		{Key: rsaKey, KeyID: "private", Algorithm: "RS384", Use: "sig"},
	}}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(body)
	}))
	t.Cleanup(app.Close)

	s := start(t, smarttest.Options{})
	s.RegisterClient(smarttest.Client{ID: "jwks", Auth: smarttest.AuthPrivateKeyJWT, JWKSURL: app.URL + "/jwks.json"})
	s.RegisterClient(smarttest.Client{ID: "gone", Auth: smarttest.AuthPrivateKeyJWT, JWKSURL: app.URL + "/missing.json"})

	sign := func(client string, key crypto.Signer, alg jose.SignatureAlgorithm, kid string) []string {
		opts := (&jose.SignerOptions{}).WithType("JWT")
		if kid != "" {
			opts = opts.WithHeader("kid", kid)
		}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		a, err := jwt.Signed(signer).Claims(jwt.Claims{
			Issuer: client, Subject: client, Audience: jwt.Audience{s.TokenURL()}, ID: rand.Text(),
			Expiry: jwt.NewNumericDate(time.Now().Add(2 * time.Minute)),
		}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return []string{"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion", a}
	}

	for _, tc := range []struct {
		name   string
		client string
		form   []string
		want   int
		why    string // in the error_description of a refusal
	}{
		{"RS384 by kid", "jwks", sign("jwks", rsaKey, jose.RS384, "rsa"), 200, ""},
		{"ES384 by kid", "jwks", sign("jwks", ecKey, jose.ES384, "ec"), 200, ""},
		{"no kid", "jwks", sign("jwks", rsaKey, jose.RS384, ""), 401, "kid is missing"},
		{"unknown kid", "jwks", sign("jwks", rsaKey, jose.RS384, "nobody"), 401, "not in the client's JWKS"},
		{"another key's kid", "jwks", sign("jwks", ecKey, jose.ES384, "rsa"), 401, "is for RS384"},
		{"an encryption key", "jwks", sign("jwks", rsaKey, jose.RS384, "enc"), 401, "not sig"},
		{"a key for another alg", "jwks", sign("jwks", rsaKey, jose.RS384, "rs256"), 401, "is for RS256"},
		{"a published private key", "jwks", sign("jwks", rsaKey, jose.RS384, "private"), 401, "private part"},
		{"the JWKS URL answers 404", "gone", sign("gone", rsaKey, jose.RS384, "rsa"), 401, "404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pk := newPKCE()
			c := code(t, s, authParams(s, tc.client, pk))
			status, body := postToken(t, s, codeForm(c, pk, tc.form...), "", "")
			if status != tc.want {
				t.Fatalf("status %d, want %d: %v", status, tc.want, body)
			}
			if tc.want == 401 && body["error"] != "invalid_client" {
				t.Errorf("error = %v, want invalid_client", body["error"])
			}
			if d := str(body["error_description"]); !strings.Contains(d, tc.why) {
				t.Errorf("error_description %q, want it to say %q", d, tc.why)
			}
		})
	}
}
