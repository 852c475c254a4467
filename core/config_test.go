package core_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/fhirware/smart/core"
)

func TestNewReportsTheField(t *testing.T) {
	t.Parallel()
	rsaKey := mustRSA(t)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ok := core.Config{ClientID: "app", CallbackURL: "https://app.test/cb", RedirectURL: "/app",
		Issuers: []core.Issuer{{URL: "https://ehr.test/fhir"}}}
	for _, tc := range []struct {
		name  string
		edit  func(*core.Config)
		field string
	}{
		{"no client id", func(c *core.Config) { c.ClientID = "" }, "ClientID"},
		{"no callback", func(c *core.Config) { c.CallbackURL = "" }, "CallbackURL"},
		{"relative callback", func(c *core.Config) { c.CallbackURL = "/cb" }, "CallbackURL"},
		{"no redirect", func(c *core.Config) { c.RedirectURL = "" }, "RedirectURL"},
		{"bad redirect", func(c *core.Config) { c.RedirectURL = "http://[::1" }, "RedirectURL"},
		{"no issuers", func(c *core.Config) { c.Issuers = nil }, "Issuers"},
		{"relative issuer", func(c *core.Config) { c.Issuers[0].URL = "/fhir" }, "Issuers[0].URL"},
		{"duplicate issuer", func(c *core.Config) {
			c.Issuers = append(c.Issuers, core.Issuer{URL: "https://ehr.test/fhir/"})
		}, "Issuers[1].URL"},
		{"secret missing", func(c *core.Config) {
			c.Issuers[0].Auth = core.ClientAuth{Method: core.AuthClientSecretBasic}
		}, "Issuers[0].Auth.Secret"},
		{"signer missing", func(c *core.Config) {
			c.Issuers[0].Auth = core.ClientAuth{Method: core.AuthPrivateKeyJWT}
		}, "Issuers[0].Auth.Signer"},
		{"RSA key with ES384", func(c *core.Config) {
			c.Issuers[0].Auth = core.ClientAuth{Method: core.AuthPrivateKeyJWT, Signer: rsaKey, Algorithm: "ES384"}
		}, "Issuers[0].Auth.Algorithm"},
		{"Ed25519 key", func(c *core.Config) {
			c.Issuers[0].Auth = core.ClientAuth{Method: core.AuthPrivateKeyJWT, Signer: edKey}
		}, "Issuers[0].Auth.Signer"},
		{"unknown method", func(c *core.Config) {
			c.Issuers[0].Auth = core.ClientAuth{Method: "magic"}
		}, "Issuers[0].Auth.Method"},
		{"default issuer without client", func(c *core.Config) {
			c.ClientID, c.Issuers, c.AllowAnyIssuer = "", nil, true
		}, "ClientID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			cfg.Issuers = append([]core.Issuer(nil), ok.Issuers...)
			tc.edit(&cfg)
			_, err := core.New(cfg)
			wantCode(t, err, core.CodeInvalidConfig)
			if !strings.Contains(err.Error(), "Config."+tc.field+" ") {
				t.Errorf("error %q does not name Config.%s", err, tc.field)
			}
		})
	}
	if _, err := core.New(ok); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(mustEC(t).Curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb", RedirectURL: "/app",
		Scope:   "launch openid fhirUser user/*.rs",
		Issuers: []core.Issuer{{URL: "https://ehr.test/fhir/", Auth: core.ClientAuth{Method: core.AuthPrivateKeyJWT, Signer: key}}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := eng.Config()
	if cfg.StandaloneScope != "launch/patient openid fhirUser user/*.rs" {
		t.Errorf("StandaloneScope %q", cfg.StandaloneScope)
	}
	is := cfg.Issuers[0]
	if is.URL != "https://ehr.test/fhir" || is.Name != "ehr.test" || is.ClientID != "app" || is.Auth.Algorithm != "ES384" {
		t.Errorf("issuer defaults %+v", is)
	}
	if cfg.PendingLaunchTTL != core.DefaultPendingLaunchTTL || cfg.LaunchTTL != core.DefaultSessionTTL ||
		cfg.Leeway != core.DefaultLeeway || cfg.MaxRetries != core.DefaultMaxRetries ||
		cfg.MaxLaunches != core.DefaultMaxLaunches || cfg.Now == nil || cfg.Logger == nil {
		t.Errorf("defaults not filled: %+v", cfg)
	}
}

func TestErrorCodes(t *testing.T) {
	t.Parallel()
	cause := errors.New("dial tcp: refused")
	err := error(&core.Error{Op: "ready", Code: core.CodeStorageUnavailable, Description: "the session storage failed", Err: cause})
	if got := err.Error(); got != "smart: ready: storage_unavailable: the session storage failed: dial tcp: refused" {
		t.Errorf("message %q", got)
	}
	if !errors.Is(err, core.CodeStorageUnavailable) || errors.Is(err, core.CodeNoLaunch) || !errors.Is(err, cause) {
		t.Error("errors.Is does not see the code and the cause")
	}
	var e *core.Error
	if !errors.As(err, &e) || e.HTTPStatus() != http.StatusServiceUnavailable {
		t.Error("errors.As / HTTPStatus")
	}
	for code, status := range map[core.Code]int{
		core.CodeInvalidRequest: 400, core.CodeInvalidState: 400, core.CodeInvalidState: 400,
		core.CodeUnknownIssuer: 403, core.CodeAuthorizationDenied: 403,
		core.CodeNoLaunch: 401, core.CodeLaunchExpired: 401, core.CodeRefreshFailed: 401,
		core.CodeDiscoveryFailed: 502, core.CodeTokenExchangeFailed: 502, core.CodeInvalidIDToken: 502,
		core.CodeFHIRRequestFailed: 502, core.CodeResourceNotFound: 404, core.CodeStorageUnavailable: 503,
		core.CodeInvalidConfig: 500,
	} {
		if got := core.HTTPStatus(&core.Error{Code: code}); got != status {
			t.Errorf("%s → %d, want %d", code, got, status)
		}
	}
	if core.HTTPStatus(nil) != 200 || core.HTTPStatus(cause) != 500 || core.ErrorCode(cause) != "" {
		t.Error("HTTPStatus of nil or foreign errors")
	}
	if core.CodeNoLaunch.Error() != "smart: no_launch" {
		t.Errorf("Code.Error %q", core.CodeNoLaunch.Error())
	}
}

// TestClientAuthKeys checks every key the ClientAuth docs name: the keys
// SMART's algorithms need pass New, every other one is refused there (not
// at the first token request), naming the field.
func TestClientAuthKeys(t *testing.T) {
	t.Parallel()
	ec := func(c elliptic.Curve) crypto.Signer {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	rsa2048, p384 := mustRSA(t), ec(elliptic.P384())
	for _, tc := range []struct {
		name    string
		signer  crypto.Signer
		alg     string
		wantAlg string // "" when New must refuse
		field   string
	}{
		{"RSA 2048", rsa2048, "", "RS384", ""},
		{"RSA 2048 RS384", rsa2048, "RS384", "RS384", ""},
		{"P-384", p384, "", "ES384", ""},
		{"P-384 ES384", p384, "ES384", "ES384", ""},
		{"P-256", ec(elliptic.P256()), "", "", "Signer"},
		{"P-256 ES384", ec(elliptic.P256()), "ES384", "", "Signer"},
		{"P-521", ec(elliptic.P521()), "", "", "Signer"},
		{"Ed25519", edKey, "", "", "Signer"},
		{"RSA 1024", rsa1024, "", "", "Signer"},
		{"RSA with ES384", rsa2048, "ES384", "", "Algorithm"},
		{"RSA with RS256", rsa2048, "RS256", "", "Algorithm"},
		{"P-384 with RS384", p384, "RS384", "", "Algorithm"},
		{"P-384 with ES256", p384, "ES256", "", "Algorithm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb", RedirectURL: "/app",
				Issuers: []core.Issuer{{URL: "https://ehr.test/fhir",
					Auth: core.ClientAuth{Method: core.AuthPrivateKeyJWT, Signer: tc.signer, Algorithm: tc.alg}}}})
			if tc.wantAlg != "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got := eng.Config().Issuers[0].Auth.Algorithm; got != tc.wantAlg {
					t.Errorf("Algorithm %q, want %q", got, tc.wantAlg)
				}
				return
			}
			wantCode(t, err, core.CodeInvalidConfig)
			if !strings.Contains(err.Error(), "Config.Issuers[0].Auth."+tc.field+" ") {
				t.Errorf("error %q does not name Config.Issuers[0].Auth.%s", err, tc.field)
			}
		})
	}
}
