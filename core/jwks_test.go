package core_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// publishedKeys serves the app's JWKS over real HTTP, as the app would at
// /.well-known/jwks.json, and lets a test rotate the set and count how
// often the EHR fetched it.
type publishedKeys struct {
	srv     *httptest.Server
	handler atomic.Pointer[http.Handler]
	fetches atomic.Int64
}

func publishKeys(t *testing.T, keys ...core.ClientAuth) *publishedKeys {
	t.Helper()
	p := new(publishedKeys)
	p.rotate(t, keys...)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		(*p.handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// rotate replaces the published set with keys.
func (p *publishedKeys) rotate(t *testing.T, keys ...core.ClientAuth) {
	t.Helper()
	h, err := core.JWKSHandler(keys...)
	if err != nil {
		t.Fatalf("JWKSHandler: %v", err)
	}
	p.handler.Store(&h)
}

func (p *publishedKeys) url() string { return p.srv.URL + "/.well-known/jwks.json" }

// signingEngine is an engine of the harness's app on the harness's EHR
// that signs its assertions with auth: the app after a key rotation.
func signingEngine(t *testing.T, h *harness, auth core.ClientAuth) *core.Engine {
	t.Helper()
	eng, err := core.New(core.Config{
		ClientID:          "app",
		CallbackURL:       "http://app.test/fhir/callback",
		Now:               h.clock.Now,
		Issuers:           []core.Issuer{{URL: h.ehr.FHIRBaseURL(), Auth: auth}},
		AllowInsecureHTTP: true,
	})
	if err != nil {
		t.Fatalf("core.New: %v", err)
	}
	return eng
}

// launchWith runs an EHR launch for pat1 with eng, through the token
// endpoint, and returns the callback's error.
func launchWith(t *testing.T, h *harness, eng *core.Engine) error {
	t.Helper()
	ctx := context.Background()
	authURL, err := eng.Launch(ctx, "browser", h.ehr.FHIRBaseURL(), h.ehr.NewLaunch(pat1))
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	rc, err := eng.Callback(ctx, "browser", authorize(t, authURL))
	if err == nil && rc.Patient().ID != "pat-1" {
		t.Errorf("patient %+v, want pat-1", rc.Patient())
	}
	return err
}

// TestJWKSRegistration registers the app with the EHR by the URL of the
// set JWKSHandler serves, and launches with private_key_jwt; then rotates
// to a second key the EHR has not seen, and to a key never published.
func TestJWKSRegistration(t *testing.T) {
	t.Parallel()
	oldKey := core.ClientAuth{Signer: mustRSA(t), KeyID: "app-2025"}
	newKey := core.ClientAuth{Signer: mustEC(t), KeyID: "app-2026"}
	keys := publishKeys(t, oldKey)
	h := newHarness(t, smarttest.Options{},
		smarttest.Client{Auth: smarttest.AuthPrivateKeyJWT, JWKSURL: keys.url()},
		core.Config{}, core.Issuer{Auth: oldKey})

	if err := launchWith(t, h, h.eng); err != nil {
		t.Fatalf("launch signed with the published key: %v", err)
	}
	if err := launchWith(t, h, h.eng); err != nil {
		t.Fatalf("second launch: %v", err)
	}
	if n := keys.fetches.Load(); n != 1 {
		t.Errorf("the EHR fetched the JWKS %d times for two launches with one key, want 1 (cached)", n)
	}

	// Rotation: the set lists both keys, the app signs with the new one;
	// the EHR's cached set lacks its kid and is fetched again.
	keys.rotate(t, newKey, oldKey)
	if err := launchWith(t, h, signingEngine(t, h, newKey)); err != nil {
		t.Fatalf("launch signed with the rotated key: %v", err)
	}
	if n := keys.fetches.Load(); n != 2 {
		t.Errorf("the EHR fetched the JWKS %d times, want 2 (once more for the new kid)", n)
	}
	if err := launchWith(t, h, h.eng); err != nil {
		t.Fatalf("launch signed with the old key, still published: %v", err)
	}

	// A kid in neither set: refused after one more fetch.
	stray := core.ClientAuth{Signer: mustRSA(t), KeyID: "app-stray"}
	wantCode(t, launchWith(t, h, signingEngine(t, h, stray)), core.CodeTokenExchangeFailed)
	if n := keys.fetches.Load(); n != 3 {
		t.Errorf("the EHR fetched the JWKS %d times, want 3 (once for the unknown kid)", n)
	}
	// A published kid with another key's signature: refused.
	forged := core.ClientAuth{Signer: mustRSA(t), KeyID: oldKey.KeyID}
	wantCode(t, launchWith(t, h, signingEngine(t, h, forged)), core.CodeTokenExchangeFailed)
}

// TestJWKSHandlerAnswer reads the published set over HTTP: public parts
// only, kid, use and alg for each key, and the cache header.
func TestJWKSHandlerAnswer(t *testing.T) {
	t.Parallel()
	rsaKey := core.ClientAuth{Signer: mustRSA(t), KeyID: "rsa-1"}
	ecKey := core.ClientAuth{Signer: kmsSigner{mustEC(t)}, KeyID: "ec-1"}
	keys := publishKeys(t, rsaKey, ecKey, rsaKey) // the same key twice is listed once

	resp, err := http.Get(keys.url())
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/jwk-set+json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=3600" {
		t.Errorf("Cache-Control %q", cc)
	}

	var raw struct{ Keys []map[string]any }
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	want := []struct{ kid, kty, alg string }{{"rsa-1", "RSA", "RS384"}, {"ec-1", "EC", "ES384"}}
	if len(raw.Keys) != len(want) {
		t.Fatalf("%d keys, want %d: %s", len(raw.Keys), len(want), body)
	}
	for i, w := range want {
		k := raw.Keys[i]
		if k["kid"] != w.kid || k["kty"] != w.kty || k["alg"] != w.alg || k["use"] != "sig" {
			t.Errorf("key %d: kid %v kty %v alg %v use %v, want %s %s %s sig", i, k["kid"], k["kty"], k["alg"], k["use"], w.kid, w.kty, w.alg)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Errorf("key %d publishes the private member %q", i, private)
			}
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() || !k.Valid() {
			t.Errorf("kid %q: public %v, valid %v", k.KeyID, k.IsPublic(), k.Valid())
		}
	}
	if pub, ok := set.Key("rsa-1")[0].Key.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(rsaKey.Signer.Public()) {
		t.Error("kid rsa-1 is not the RSA signer's public key")
	}

	req, _ := http.NewRequest(http.MethodPost, keys.url(), nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: status %d, Allow %q; want 405 and GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestJWKSHandlerRefuses lists the key sets JWKSHandler refuses to build.
func TestJWKSHandlerRefuses(t *testing.T) {
	t.Parallel()
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey := mustRSA(t)
	for _, tc := range []struct {
		name string
		keys []core.ClientAuth
		want string
	}{
		{"no key", nil, "has no key"},
		{"P-256", []core.ClientAuth{{Signer: p256, KeyID: "k"}}, `key 0 (kid "k") is an ECDSA key on P-256; ES384 needs P-384`},
		{"Ed25519", []core.ClientAuth{{Signer: edKey, KeyID: "k"}}, "ed25519.PublicKey"},
		{"a secret", []core.ClientAuth{{Secret: "s"}}, "key 0 has no Signer"},
		{"no kid", []core.ClientAuth{{Signer: rsaKey}}, "key 0 has no KeyID"},
		{"one kid, two keys", []core.ClientAuth{{Signer: rsaKey, KeyID: "k"}, {Signer: mustEC(t), KeyID: "k"}}, `key 1 has kid "k", which another key has`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := core.JWKSHandler(tc.keys...)
			if h != nil {
				t.Error("got a handler")
			}
			wantCode(t, err, core.CodeInvalidConfig)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}
