package core

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TestIDTokenAzpAndLifetime checks the engine's own id_token checks, beyond
// go-oidc's: azp (OpenID Connect Core section 3.1.3.7) and the lifetime
// bound, on tokens signed by hand.
func TestIDTokenAzpAndLifetime(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	e := &Engine{cfg: Config{Now: func() time.Time { return now }, Leeway: time.Minute}, tel: quietTelemetry()}
	as := &authServer{verifier: newIDTokenVerifier("https://ehr.test/auth", "app",
		&oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{key.Public()}}, func() time.Time { return now })}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(c map[string]any)
		ok   bool
	}{
		{"plain", func(map[string]any) {}, true},
		{"azp is the client", func(c map[string]any) { c["azp"] = "app" }, true},
		{"azp is another client", func(c map[string]any) { c["azp"] = "other" }, false},
		{"several audiences with azp", func(c map[string]any) { c["aud"], c["azp"] = []string{"app", "other"}, "app" }, true},
		{"several audiences without azp", func(c map[string]any) { c["aud"] = []string{"app", "other"} }, false},
		{"several audiences, azp another", func(c map[string]any) { c["aud"], c["azp"] = []string{"app", "other"}, "other" }, false},
		{"24 hours from iat", func(c map[string]any) {
			c["exp"] = now.Add(maxIDTokenLifetime - time.Hour).Unix()
			c["iat"] = now.Add(-time.Hour).Unix()
		}, true},
		{"25 hours from iat", func(c map[string]any) {
			c["exp"] = now.Add(maxIDTokenLifetime).Unix()
			c["iat"] = now.Add(-time.Hour).Unix()
		}, false},
		{"no iat, an hour", func(c map[string]any) { delete(c, "iat") }, true},
		{"no iat, 25 hours", func(c map[string]any) { delete(c, "iat"); c["exp"] = now.Add(maxIDTokenLifetime + time.Hour).Unix() }, false},
		{"no iat, years", func(c map[string]any) { delete(c, "iat"); c["exp"] = now.AddDate(10, 0, 0).Unix() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			claims := map[string]any{"iss": "https://ehr.test/auth", "sub": "u1", "aud": "app", "nonce": "n",
				"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
			tc.edit(claims)
			raw, err := jwt.Signed(signer).Claims(claims).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.verifyIDToken(context.Background(), "callback", as, raw, "n")
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && codeOf(err) != CodeInvalidIDToken {
				t.Fatalf("got %v, want invalid_id_token", err)
			}
		})
	}
}
