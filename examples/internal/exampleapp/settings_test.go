package exampleapp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fhirware/smart/core"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestSettingsDefaults(t *testing.T) {
	s, err := parseSettings("test", nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if s.addr != "127.0.0.1:8080" || s.scope != "" || s.store != "memory" || !s.sandbox() || s.insecureHTTP {
		t.Errorf("defaults = %+v", s)
	}
}

// Every flag has an environment variable, and a flag on the command line
// wins over it.
func TestSettingsEnvironmentAndFlags(t *testing.T) {
	e := env(map[string]string{
		"SMART_ADDR":          ":9000",
		"SMART_ISSUER":        "https://a.example/fhir, https://b.example/fhir",
		"SMART_CLIENT_ID":     "from-env",
		"SMART_CLIENT_SECRET": "secret-from-env",
		"SMART_SCOPE":         "launch openid",
		"SMART_STORE":         "redis://127.0.0.1:6379/0",
		"SMART_INSECURE_HTTP": "true",
		"SMART_BASE_URL":      "https://app.example",
	})
	s, err := parseSettings("test", nil, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if s.addr != ":9000" || s.clientID != "from-env" || s.clientSecret != "secret-from-env" || s.scope != "launch openid" ||
		s.store != "redis://127.0.0.1:6379/0" || !s.insecureHTTP || s.baseURL != "https://app.example" ||
		!slices.Equal(s.issuers, []string{"https://a.example/fhir", "https://b.example/fhir"}) {
		t.Errorf("from the environment: %+v", s)
	}

	s, err = parseSettings("test", []string{
		"-addr", "127.0.0.1:0", "-issuer", "https://c.example/fhir", "-issuer", "https://d.example/fhir",
		"-client-id", "from-flag", "-scope", "launch", "-insecure-http=false",
	}, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if s.addr != "127.0.0.1:0" || s.clientID != "from-flag" || s.scope != "launch" || s.insecureHTTP ||
		!slices.Equal(s.issuers, []string{"https://c.example/fhir", "https://d.example/fhir"}) {
		t.Errorf("flags over the environment: %+v", s)
	}
}

func TestSettingsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-issuer", "https://a.example/fhir"}, "-client-id is required"},
		{[]string{"-client-secret", "x", "-private-key", "k.pem"}, "exclude each other"},
		{[]string{"-kid", "k1"}, "needs -private-key"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"-nope"}, "not defined"},
	} {
		_, err := parseSettings("test", tc.args, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestBaseURL(t *testing.T) {
	for _, tc := range []struct{ base, addr, want string }{
		{"", "127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"", "0.0.0.0:8080", "http://127.0.0.1:8080"},
		{"", "[::]:8080", "http://127.0.0.1:8080"},
		{"", "[::1]:8080", "http://[::1]:8080"},
		{"https://app.example/", "0.0.0.0:8080", "https://app.example"},
	} {
		addr, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := (&settings{baseURL: tc.base}).baseURLFor(addr)
		if err != nil || got != tc.want {
			t.Errorf("base %q, addr %s: %q, %v; want %q", tc.base, tc.addr, got, err, tc.want)
		}
	}
	if _, err := (&settings{baseURL: "app.example"}).baseURLFor(nil); err == nil {
		t.Error("a base URL without a scheme was accepted")
	}
}

func TestClientAuth(t *testing.T) {
	dir := t.TempDir()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		s    settings
		want string
	}{
		{settings{}, "none"},
		{settings{clientSecret: "s"}, "client_secret_basic"},
		{settings{privateKey: write("rsa.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))}, "private_key_jwt"},
		{settings{privateKey: write("ec.pem", "EC PRIVATE KEY", ecDER), kid: "k"}, "private_key_jwt"},
		{settings{privateKey: write("p8.pem", "PRIVATE KEY", pkcs8)}, "private_key_jwt"},
	} {
		a, err := tc.s.clientAuth()
		if got := authMethod(a); err != nil || got != tc.want {
			t.Errorf("%+v: %v, %v; want %s", tc.s, got, err, tc.want)
		}
		if tc.want == "private_key_jwt" && (a.Signer == nil || tc.s.kid != "" && a.KeyID != tc.s.kid) {
			t.Errorf("%+v: %+v", tc.s, a)
		}
		if tc.want == "private_key_jwt" && tc.s.kid == "" {
			// Without -kid, the key's SHA-256 thumbprint, the same at
			// every start.
			again, _ := tc.s.clientAuth()
			if len(a.KeyID) != 43 || again.KeyID != a.KeyID {
				t.Errorf("%+v: kid %q, then %q; want the same base64url SHA-256 thumbprint", tc.s, a.KeyID, again.KeyID)
			}
		}
		if tc.want == "client_secret_basic" && a.Secret != core.Secret(tc.s.clientSecret) {
			t.Errorf("%+v: the secret is not the flag's", tc.s)
		}
	}
	if _, err := (&settings{privateKey: write("junk.pem", "JUNK", []byte("x"))}).clientAuth(); err == nil {
		t.Error("a PEM file without a key was accepted")
	}
	if _, err := (&settings{privateKey: filepath.Join(dir, "missing.pem")}).clientAuth(); err == nil {
		t.Error("a missing key file was accepted")
	}
}

func TestOpenStoreRefusesUnknownSchemes(t *testing.T) {
	_, err := openStore(t.Context(), "mysql://u:pw@db/x")
	if err == nil || strings.Contains(err.Error(), "pw") {
		t.Errorf("error %v; want one without the password", err)
	}
	st, err := openStore(t.Context(), "memory")
	if err != nil {
		t.Fatalf("memory: %v", err)
	}
	if st.store != nil || st.locker != nil {
		t.Errorf("memory: %v, %v; want the manager's own memstore and no lock (nil, nil)", st.store, st.locker)
	}
	st.close()
}
