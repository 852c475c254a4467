package core_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// An issuer accepted through AllowAnyIssuer may not live on a configured
// issuer's origin, however the origin is spelled: Go's HTTP client dials
// the same server for each of these.
func TestDynamicIssuerOnConfiguredOriginAnySpelling(t *testing.T) {
	t.Parallel()
	eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.example/cb", RedirectURL: "/",
		Issuers: []core.Issuer{{URL: "https://ehr.example/tenant-h/fhir"}, {URL: "https://[2001:db8::1]:8443/fhir"}}, AllowAnyIssuer: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, iss := range []string{
		"https://ehr.example/evil/fhir",
		"https://EHR.example/evil/fhir",
		"https://ehr.example:443/evil/fhir",
		"https://ehr.example:0443/evil/fhir",
		"https://ehr.example./evil/fhir",
		"https://ｅhr.example/evil/fhir", // fullwidth e, mapped by IDNA
		"https://[2001:0db8:0::1]:8443/evil/fhir",
	} {
		if err := eng.CheckIssuer(iss); !errors.Is(err, core.CodeUnknownIssuer) {
			t.Errorf("%s: %v, want unknown_issuer", iss, err)
		}
	}
	for _, iss := range []string{"https://ehr.example:8443/fhir", "https://other.example/fhir"} {
		if err := eng.CheckIssuer(iss); err != nil {
			t.Errorf("%s: %v, want accepted", iss, err)
		}
	}
}

func TestNewRefusesUnsafeIssuerSettings(t *testing.T) {
	t.Parallel()
	base := func() core.Config {
		return core.Config{ClientID: "app", CallbackURL: "https://app.example/fhir/callback?x=1", RedirectURL: "/",
			Issuers: []core.Issuer{{URL: "https://ehr.example/fhir"}}}
	}
	for _, tc := range []struct {
		name  string
		edit  func(*core.Config)
		field string
	}{
		{"default issuer secret basic", func(c *core.Config) {
			c.AllowAnyIssuer = true
			c.DefaultIssuer.Auth = core.ClientAuth{Method: core.AuthClientSecretBasic, Secret: "s"}
		}, "Config.DefaultIssuer.Auth.Method"},
		{"default issuer secret post", func(c *core.Config) {
			c.AllowAnyIssuer = true
			c.DefaultIssuer.Auth = core.ClientAuth{Method: core.AuthClientSecretPost, Secret: "s"}
		}, "Config.DefaultIssuer.Auth.Method"},
		{"default issuer header", func(c *core.Config) {
			c.AllowAnyIssuer = true
			c.DefaultIssuer.Header = http.Header{"X-Api-Key": {"k"}}
		}, "Config.DefaultIssuer.Header"},
		{"default issuer authorization server", func(c *core.Config) {
			c.AllowAnyIssuer = true
			c.DefaultIssuer.AuthorizationServer = "https://auth.example"
		}, "Config.DefaultIssuer.AuthorizationServer"},
		{"authorization server over http", func(c *core.Config) {
			c.Issuers[0].AuthorizationServer = "http://auth.example"
		}, "Config.Issuers[0].AuthorizationServer"},
		{"authorization server with query", func(c *core.Config) {
			c.Issuers[0].AuthorizationServer = "https://auth.example/?a=b"
		}, "Config.Issuers[0].AuthorizationServer"},
		{"callback on another host", func(c *core.Config) {
			c.Issuers[0].CallbackURL = "https://evil.example/fhir/callback?x=1&ehr=a"
		}, "Config.Issuers[0].CallbackURL"},
		{"callback on another path", func(c *core.Config) {
			c.Issuers[0].CallbackURL = "https://app.example/fhir/other?x=1&ehr=a"
		}, "Config.Issuers[0].CallbackURL"},
		{"callback losing a parameter", func(c *core.Config) {
			c.Issuers[0].CallbackURL = "https://app.example/fhir/callback?ehr=a"
		}, "Config.Issuers[0].CallbackURL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			_, err := core.New(c)
			if !errors.Is(err, core.CodeInvalidConfig) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("New: %v, want invalid_config naming %s", err, tc.field)
			}
		})
	}
	// private_key_jwt stays allowed on DefaultIssuer: its assertion names
	// the one token endpoint it is good for.
	c := base()
	c.AllowAnyIssuer = true
	c.DefaultIssuer.Auth = core.ClientAuth{Method: core.AuthPrivateKeyJWT, Signer: mustEC(t)}
	if _, err := core.New(c); err != nil {
		t.Fatalf("private_key_jwt on DefaultIssuer: %v", err)
	}
}

// An EHR whose authorization server lives on another origin works when the
// app names that server, and only that one.
func TestAuthorizationServerOnAnotherOrigin(t *testing.T) {
	t.Parallel()
	ehr := smarttest.NewServer(smarttest.Options{})
	t.Cleanup(ehr.Close)
	ehr.RegisterClient(smarttest.Client{ID: "app"})
	// A FHIR front on its own origin whose discovery points at the EHR's
	// authorization server.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"issuer":"` + ehr.AuthIssuer() + `","jwks_uri":"` + ehr.JWKSURL() +
			`","authorization_endpoint":"` + ehr.AuthorizeURL() + `","token_endpoint":"` + ehr.TokenURL() + `"}`))
	}))
	t.Cleanup(front.Close)
	iss := front.URL + "/fhir"
	launch := func(as string) error {
		eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.example/cb", RedirectURL: "/",
			Issuers: []core.Issuer{{URL: iss, AuthorizationServer: as}}, AllowInsecureHTTP: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = eng.Session("b", newMemStorage(nil)).Launch(context.Background(), core.LaunchRequest{Issuer: iss})
		return err
	}
	if err := launch(""); !errors.Is(err, core.CodeDiscoveryFailed) {
		t.Errorf("without AuthorizationServer: %v, want discovery_failed", err)
	}
	if err := launch(ehr.AuthIssuer()); err != nil {
		t.Errorf("with AuthorizationServer: %v", err)
	}
	if err := launch(front.URL + "/auth"); !errors.Is(err, core.CodeDiscoveryFailed) {
		t.Errorf("with another AuthorizationServer than discovery declares: %v, want discovery_failed", err)
	}
}
