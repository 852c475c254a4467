package core_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

func TestNewReportsTheField(t *testing.T) {
	t.Parallel()
	rsaKey := mustRSA(t)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ok := core.Config{ClientID: "app", CallbackURL: "https://app.test/cb",
		Issuers: []core.Issuer{{URL: "https://ehr.test/fhir"}}}
	for _, tc := range []struct {
		name  string
		edit  func(*core.Config)
		field string
	}{
		{"no client id", func(c *core.Config) { c.ClientID = "" }, "ClientID"},
		{"relative callback", func(c *core.Config) { c.CallbackURL = "/cb" }, "CallbackURL"},
		{"no issuers", func(c *core.Config) { c.Issuers = nil }, "Issuers"},
		{"relative issuer", func(c *core.Config) { c.Issuers[0].URL = "/fhir" }, "Issuers[0].URL"},
		{"duplicate issuer", func(c *core.Config) {
			c.Issuers = append(c.Issuers, core.Issuer{URL: "https://ehr.test/fhir/"})
		}, "Issuers[1].URL"},
		{"both a secret and a signer", func(c *core.Config) {
			c.Issuers[0].Auth = core.ClientAuth{Secret: "s", Signer: rsaKey}
		}, "Issuers[0].Auth"},
		{"Ed25519 key", func(c *core.Config) {
			c.Issuers[0].Auth = core.ClientAuth{Signer: edKey}
		}, "Issuers[0].Auth.Signer"},
		{"unknown auth style", func(c *core.Config) {
			c.Issuers[0].Auth = core.ClientAuth{Secret: "s", AuthStyle: oauth2.AuthStyle(7)}
		}, "Issuers[0].Auth.AuthStyle"},
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

// TestConfigDefaults checks every default the Config fields' docs name.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb",
		Scope:   "launch openid fhirUser user/*.rs",
		Issuers: []core.Issuer{{URL: "https://ehr.test/fhir/", Auth: core.ClientAuth{Signer: mustEC(t)}}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := eng.Config()
	is := cfg.Issuers[0]
	if is.URL != "https://ehr.test/fhir" || is.ClientID != "app" {
		t.Errorf("issuer defaults %+v", is)
	}
	for _, d := range []struct {
		field     string
		got, want any
	}{
		{"PendingLaunchTTL", cfg.PendingLaunchTTL, 10 * time.Minute},
		{"LaunchTTL", cfg.LaunchTTL, 12 * time.Hour},
		{"Leeway", cfg.Leeway, time.Minute},
		{"MaxFHIRResponseBytes", cfg.MaxFHIRResponseBytes, int64(8 << 20)},
		{"MaxRetries", cfg.MaxRetries, 2},
		{"MaxLaunches", cfg.MaxLaunches, 10},
		{"MaxPendingLaunches", cfg.MaxPendingLaunches, 10},
		{"RefreshLockTTL", cfg.RefreshLockTTL, 30 * time.Second},
		{"MaxIdleConnsPerEHR", cfg.MaxIdleConnsPerEHR, 32},
	} {
		if d.got != d.want {
			t.Errorf("%s = %v, want %v", d.field, d.got, d.want)
		}
	}
	if cfg.Now == nil || cfg.Logger == nil || cfg.Storage == nil || cfg.Locker != nil {
		t.Errorf("Now, Logger, Storage or Locker not defaulted: %+v", cfg)
	}

	eng, err = core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb", Issuers: []core.Issuer{{URL: "https://ehr.test/fhir"}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg = eng.Config()
	if cfg.Scope != "launch openid fhirUser patient/*.read offline_access" {
		t.Errorf("default scope %q", cfg.Scope)
	}
}

// An EHR launch asks for Config.Scope; a standalone one for the same with
// "launch" as "launch/patient", so that the EHR asks the user for a
// patient.
func TestStandaloneScope(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{Scope: "launch openid fhirUser user/*.rs"}, core.Issuer{})
	for _, tc := range []struct{ launch, want string }{
		{h.ehr.NewLaunch(smarttest.LaunchContext{Patient: "pat-1"}), "launch openid fhirUser user/*.rs"},
		{"", "launch/patient openid fhirUser user/*.rs"},
	} {
		authURL, err := h.eng.Launch(context.Background(), "browser-1", h.ehr.FHIRBaseURL(), tc.launch)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(authURL)
		if got := u.Query().Get("scope"); got != tc.want {
			t.Errorf("launch %q asks for scope %q, want %q", tc.launch, got, tc.want)
		}
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
	if !errors.As(err, &e) || e.Code.HTTPStatus() != http.StatusServiceUnavailable {
		t.Error("errors.As / Code.HTTPStatus")
	}
	for code, status := range map[core.Code]int{
		core.CodeInvalidRequest: 400, core.CodeInvalidState: 400,
		core.CodeUnknownIssuer: 403, core.CodeAuthorizationDenied: 403,
		core.CodeNoLaunch: 401, core.CodeLaunchExpired: 401, core.CodeRefreshFailed: 401,
		core.CodeDiscoveryFailed: 502, core.CodeTokenExchangeFailed: 502, core.CodeInvalidIDToken: 502,
		core.CodeFHIRRequestFailed: 502, core.CodeStorageUnavailable: 503,
		core.CodeInvalidConfig: 500, core.Code("no_such_code"): 500,
	} {
		if got := code.HTTPStatus(); got != status {
			t.Errorf("%s → %d, want %d", code, got, status)
		}
	}
	if errors.As(cause, &e) {
		t.Error("a foreign error is an *Error")
	}
	for code, want := range map[core.Code]string{
		core.CodeNoLaunch:      "smart: no_launch",
		core.CodeLaunchExpired: "smart: launch_expired",
		core.CodeInvalidState:  "smart: invalid_state",
	} {
		if got := code.Error(); got != want {
			t.Errorf("Code.Error %q, want %q", got, want)
		}
	}
}

// TestClientAuthKeys checks every key the ClientAuth docs name: the keys
// SMART's algorithms need pass New and sign their client assertions with
// the algorithm of the key (RS384 for RSA, ES384 for P-384), which the
// EHR's token endpoint accepts; every other key is refused at New (not at
// the first token request), naming the field.
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
	p384 := ec(elliptic.P384())
	for _, tc := range []struct {
		name    string
		signer  crypto.Signer
		wantAlg string // "" when New must refuse
	}{
		{"RSA 2048", mustRSA(t), "RS384"},
		{"P-384", p384, "ES384"},
		{"P-384 through a crypto.Signer", kmsSigner{p384}, "ES384"},
		{"P-256", ec(elliptic.P256()), ""},
		{"P-521", ec(elliptic.P521()), ""},
		{"Ed25519", edKey, ""},
		{"RSA 1024", rsa1024, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			auth := core.ClientAuth{Signer: tc.signer, KeyID: "app-key"}
			if tc.wantAlg == "" {
				_, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb",
					Issuers: []core.Issuer{{URL: "https://ehr.test/fhir", Auth: auth}}})
				wantCode(t, err, core.CodeInvalidConfig)
				if !strings.Contains(err.Error(), "Config.Issuers[0].Auth.Signer ") {
					t.Errorf("error %q does not name Config.Issuers[0].Auth.Signer", err)
				}
				return
			}
			rec := &assertionRecorder{}
			h := newHarness(t, smarttest.Options{}, smarttest.Client{Auth: smarttest.AuthPrivateKeyJWT, PublicKey: tc.signer.Public()},
				core.Config{HTTPClient: &http.Client{Transport: rec}}, core.Issuer{Auth: auth})
			h.complete("b", &pat1)
			if got := rec.seen(); len(got) != 1 || got[0] != tc.wantAlg+" app-key" {
				t.Errorf("client assertions signed %q, want one %s with kid app-key", got, tc.wantAlg)
			}
		})
	}
}

// assertionRecorder is an HTTP transport that keeps the alg and kid of
// every client assertion sent to a token endpoint.
type assertionRecorder struct {
	mu      sync.Mutex
	headers []string
}

func (r *assertionRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/token") && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		if a := form.Get("client_assertion"); a != "" {
			var h struct{ Alg, Kid string }
			head, _, _ := strings.Cut(a, ".")
			raw, _ := base64.RawURLEncoding.DecodeString(head)
			_ = json.Unmarshal(raw, &h)
			r.mu.Lock()
			r.headers = append(r.headers, h.Alg+" "+h.Kid)
			r.mu.Unlock()
		}
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (r *assertionRecorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.headers)
}

// Engine.Config is a copy: changing what it returns changes nothing in the
// engine, its issuers' settings included.
func TestEngineConfigIsACopy(t *testing.T) {
	t.Parallel()
	eng, err := core.New(core.Config{
		ClientID: "app", CallbackURL: "https://app.test/fhir/callback",
		Issuers: []core.Issuer{{URL: "https://ehr.test/fhir", Header: http.Header{"X-Tenant": {"a"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := eng.Config()
	c.Issuers[0].AuthorizationServer = "https://evil.test"
	c.Issuers[0].Header.Set("X-Tenant", "evil")
	c.Issuers = append(c.Issuers, core.Issuer{URL: "https://evil.test/fhir"})
	again := eng.Config()
	if len(again.Issuers) != 1 || again.Issuers[0].AuthorizationServer != "" || again.Issuers[0].Header.Get("X-Tenant") != "a" {
		t.Errorf("the engine's configuration changed through a copy: %+v", again.Issuers)
	}
}
