package core

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Fuzz targets for every parser of untrusted input. Seeds live in
// testdata/fuzz; .ci/run runs each target for a short while.

func FuzzDiscovery(f *testing.F) {
	f.Add([]byte(`{"issuer":"https://ehr.test/auth","jwks_uri":"../auth/jwks","authorization_endpoint":"/auth/authorize","token_endpoint":"https://ehr.test/auth/token"}`))
	f.Add([]byte(`{"authorization_endpoint":"javascript:alert(1)","token_endpoint":"//evil.test/t"}`))
	f.Add([]byte(`{"authorization_endpoint":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Discovery
		if json.Unmarshal(data, &d) != nil {
			return
		}
		if d.resolve("https://ehr.test/fhir/.well-known/smart-configuration", false) != nil {
			return
		}
		if d.TokenEndpoint == "" {
			t.Fatal("resolve accepted a configuration without a token_endpoint")
		}
		for _, e := range []string{d.AuthorizationEndpoint, d.TokenEndpoint} {
			if e == "" {
				continue // no authorization endpoint: Backend Services only
			}
			u, err := url.Parse(e)
			if err != nil || u.Scheme != "https" || u.Host == "" {
				t.Fatalf("resolved endpoint %q is not an https URL", e)
			}
		}
	})
}

func FuzzCapabilityStatement(f *testing.F) {
	f.Add([]byte(`{"resourceType":"CapabilityStatement","rest":[{"security":{"extension":[{"url":"` + oauthURIs + `","extension":[{"url":"authorize","valueUri":"https://ehr.test/a"},{"url":"token","valueUri":"/t"}]}]}}]}`))
	f.Add([]byte(`{"resourceType":"Patient"}`))
	f.Add([]byte(`{"resourceType":"CapabilityStatement","rest":null}`))
	f.Add([]byte(`{"resourceType":"CapabilityStatement","fhirVersion":"4.0.1","rest":[{"security":{"extension":[{"url":"` + oauthURIs + `","extension":[{"url":"authorize","valueUri":"/o/a%2F/authorize"},{"url":"token","valueUri":"../o/token?x#y"}]}]}}]}`))
	f.Add([]byte(`{"resourceType":"CapabilityStatement","fhirVersion":"4.0\r\nX: 1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var cs capabilityStatement
		if json.Unmarshal(data, &cs) != nil {
			return
		}
		// The version goes into a header: only a version's characters.
		if v, ok := cs.FHIRVersion.(string); ok {
			if got := fhirVersion(v); strings.Trim(got, "0123456789.-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" ||
				(got != "" && majorMinor(got) == "") {
				t.Fatalf("fhirVersion(%q) = %q", v, got)
			}
		}
		d, err := cs.oauthEndpoints()
		if err != nil {
			return
		}
		if d.resolve("https://ehr.test/fhir/metadata", false) != nil {
			return
		}
		if d.TokenEndpoint == "" {
			t.Fatal("resolve accepted a statement without a token endpoint")
		}
		// The OpenID issuer guessed from the endpoints is on their origin,
		// without query or fragment.
		if iss := sharedIssuer(d.AuthorizationEndpoint, d.TokenEndpoint); iss != "" {
			u, err := url.Parse(iss)
			if err != nil || originOf(iss) != originOf(d.TokenEndpoint) || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(iss, "/") {
				t.Fatalf("sharedIssuer(%q, %q) = %q", d.AuthorizationEndpoint, d.TokenEndpoint, iss)
			}
		}
	})
}

func FuzzTokenResponse(f *testing.F) {
	f.Add(200, []byte(`{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt","scope":"launch openid","id_token":"x.y.z","patient":"p1","encounter":"e1","need_patient_banner":true,"fhirContext":[{"reference":"Appointment/1"}],"vendor":{"a":1}}`))
	f.Add(400, []byte(`{"error":"invalid_grant","error_description":"bad\ncode"}`))
	f.Add(200, []byte(`{"error":"x","access_token":"at"}`))
	f.Add(200, []byte(`{"access_token":"at","token_type":"mac","expires_in":"soon"}`))
	f.Add(500, []byte(`<html>`))
	f.Add(200, []byte(`{"access_token":"at","expires_in":10000000000}`))
	f.Add(200, []byte(`{"access_token":"at","expires_in":-1e400}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		resp := &http.Response{StatusCode: status, Status: http.StatusText(status)}
		tr, err := parseTokenResponse("callback", CodeTokenExchangeFailed, resp, body)
		if err != nil {
			if codeOf(err) != CodeTokenExchangeFailed {
				t.Fatalf("error without its code: %v", err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error message carries control characters: %q", err)
			}
			return
		}
		if tr.AccessToken == "" || status < 200 || status > 299 {
			t.Fatalf("accepted status %d / empty token", status)
		}
		now := time.Unix(1e9, 0)
		if exp := tr.expiry(now); !exp.IsZero() && (!exp.After(now) || exp.Sub(now) > maxAccessTokenLifetime) {
			t.Fatalf("expires_in %q gave an expiry %v from now", tr.ExpiresIn, exp.Sub(now))
		}
		lc := launchContextFrom("https://ehr.test/fhir", tr, time.Unix(0, 0))
		for _, k := range []string{"access_token", "refresh_token", "id_token"} {
			if _, ok := lc.Extra[k]; ok {
				t.Fatalf("launch context kept %s", k)
			}
		}
	})
}

func FuzzIDToken(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	e := &Engine{cfg: Config{Now: time.Now, Leeway: time.Minute}, tel: quietTelemetry()}
	as := &authServer{verifier: newIDTokenVerifier("https://ehr.test/auth", "app",
		&oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{key.Public()}}, time.Now)}
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2Voci50ZXN0L2F1dGgiLCJhdWQiOiJhcHAifQ.")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.c2ln")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		_, err := e.verifyIDToken(context.Background(), "callback", as, raw, "nonce")
		if err == nil {
			t.Fatalf("an unsigned or forged id_token was accepted: %q", raw)
		}
		if codeOf(err) != CodeInvalidIDToken {
			t.Fatalf("error without its code: %v", err)
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"v":1,"h":"abc","tok":{"at":"x","rt":"y","exp":"2026-01-01T00:00:00Z"},"ctx":{"iss":"https://ehr.test/fhir","patient":"p1"},"created":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`{"v":1,"sid":"s","iss":"i","pkce":"v","nonce":"n","exp":"bad"}`))
	f.Add([]byte(`{"v":1,"h":["a","b"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var rec launchRecord
		if decodeRecord(data, &rec) == nil && rec.V != recordVersion {
			t.Fatalf("decoded a version %d record", rec.V)
		}
		var p pendingLaunch
		_ = decodeRecord(data, &p)
		var idx launchIndex
		_ = decodeRecord(data, &idx)
	})
}

// FuzzOpenSealed feeds arbitrary stored values to the envelope parser: it
// never panics, never opens a value that was not sealed by a key of the
// ring for that storage key, and a value it sealed opens back to itself.
func FuzzOpenSealed(f *testing.F) {
	k1, k2 := repeatedKey(1), repeatedKey(2)
	ring, err := newKeyRing([]Secret{k1, k2})
	if err != nil {
		f.Fatal(err)
	}
	old, err := newKeyRing([]Secret{k2})
	if err != nil {
		f.Fatal(err)
	}
	plain := []byte(`{"v":1,"h":"abc"}`)
	f.Add("launch:s:h", ring.seal("launch:s:h", plain), plain)
	f.Add("launch:s:h", old.seal("launch:s:h", plain), plain)
	f.Add("launch:s:other", ring.seal("launch:s:h", plain), plain)
	f.Add("pending:x", []byte{sealVersion}, []byte{})
	f.Add("pending:x", plain, plain)
	f.Fuzz(func(t *testing.T, key string, stored, data []byte) {
		if got, err := ring.open(key, stored); err == nil {
			// Only values sealed by the ring open: re-sealing what opened
			// must give a value of the same shape, and nothing shorter
			// than an envelope opens.
			if len(stored) != len(got)+sealOverhead || stored[0] != sealVersion {
				t.Fatalf("opened a %d-byte value to %d bytes", len(stored), len(got))
			}
		} else if !errors.Is(err, errUnsealable) || !errors.Is(err, ErrNotFound) {
			t.Fatalf("error %v is not errUnsealable and ErrNotFound", err)
		}
		sealed := ring.seal(key, data)
		got, err := ring.open(key, sealed)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("a sealed value did not open to itself: %v", err)
		}
		if _, err := ring.open(key+"x", sealed); err == nil {
			t.Fatal("a sealed value opened under another key")
		}
		if len(stored) > 0 {
			i := int(stored[0]) % len(sealed)
			sealed[i] ^= 0x80
			if _, err := ring.open(key, sealed); err == nil {
				t.Fatalf("a value changed at byte %d opened", i)
			}
		}
	})
}

// FuzzCallbackParams feeds arbitrary callback parameters to a browser with
// no pending launch: every answer is a coded error and nothing is stored.
func FuzzCallbackParams(f *testing.F) {
	st := &countingStorage{}
	e, err := New(Config{ClientID: "app", CallbackURL: "https://app.test/cb",
		Issuers: []Issuer{{URL: "https://ehr.test/fhir"}}, Storage: st})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("code", "state", "", "", "")
	f.Add("", "", "https://evil.test", "access_denied", "no\r\nSet-Cookie: x")
	f.Add("c", strings.Repeat("s", 5000), "", "", "")
	f.Fuzz(func(t *testing.T, code, state, iss, errCode, desc string) {
		before := st.sets.Load()
		_, err := e.Callback(context.Background(), "sid", CallbackRequest{Query: url.Values{
			"code": {code}, "state": {state}, "iss": {iss}, "error": {errCode}, "error_description": {desc}}})
		switch codeOf(err) {
		case CodeInvalidRequest, CodeInvalidState, CodeAuthorizationDenied:
		default:
			t.Fatalf("unexpected result %v", err)
		}
		if strings.ContainsAny(err.Error(), "\r\n") {
			t.Fatalf("error message carries control characters: %q", err)
		}
		if st.sets.Load() != before {
			t.Fatal("a refused callback stored a record")
		}
	})
}

// countingStorage holds nothing and counts writes.
type countingStorage struct{ sets atomic.Int64 }

func (c *countingStorage) Get(context.Context, string) ([]byte, error) { return nil, ErrNotFound }
func (c *countingStorage) Set(context.Context, string, []byte, time.Duration) error {
	c.sets.Add(1)
	return nil
}
func (c *countingStorage) Delete(context.Context, string) error { return nil }

// codeOf returns the Code of the first *Error in err's chain, or "".
func codeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// repeatedKey is a store key of 32 bytes b, in standard base64 as
// Config.StoreKeys takes it.
func repeatedKey(b byte) Secret {
	return Secret(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)))
}
