package core_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// An issuer accepted through AllowAnyIssuer may not live on a configured
// issuer's origin, however the origin is spelled: Go's HTTP client dials
// the same server for each of these. A refused issuer is refused before
// any request; an accepted one is asked for its configuration (here by a
// transport that records the request and fails it).
func TestDynamicIssuerOnConfiguredOriginAnySpelling(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var mu sync.Mutex
	var asked []string
	transport := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		asked = append(asked, r.URL.String())
		mu.Unlock()
		return nil, errors.New("no network in this test")
	})
	requests := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(asked)
	}
	eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.example/cb",
		Issuers:        []core.Issuer{{URL: "https://ehr.example/tenant-h/fhir"}, {URL: "https://[2001:db8::1]:8443/fhir"}},
		AllowAnyIssuer: true, AllowPrivateNetworks: true, HTTPClient: &http.Client{Transport: transport}, MaxRetries: -1})
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
		if _, err := eng.Discover(ctx, iss); !errors.Is(err, core.CodeUnknownIssuer) {
			t.Errorf("%s: %v, want unknown_issuer", iss, err)
		}
	}
	if got := requests(); len(got) != 0 {
		t.Fatalf("refused issuers were asked: %q", got)
	}
	for _, iss := range []string{"https://ehr.example:8443/fhir", "https://other.example/fhir"} {
		before := len(requests())
		if _, err := eng.Discover(ctx, iss); !errors.Is(err, core.CodeDiscoveryFailed) {
			t.Errorf("%s: %v, want accepted, and its discovery failed", iss, err)
		}
		if got := requests(); len(got) == before || got[before] != iss+"/.well-known/smart-configuration" {
			t.Errorf("%s: the requests %q do not begin with its smart-configuration", iss, got[before:])
		}
	}
}

func TestNewRefusesUnsafeIssuerSettings(t *testing.T) {
	t.Parallel()
	base := func() core.Config {
		return core.Config{ClientID: "app", CallbackURL: "https://app.example/fhir/callback?x=1",
			Issuers: []core.Issuer{{URL: "https://ehr.example/fhir"}}}
	}
	for _, tc := range []struct {
		name  string
		edit  func(*core.Config)
		field string
	}{
		{"default issuer secret basic", func(c *core.Config) {
			c.AllowAnyIssuer = true
			c.DefaultIssuer.Auth = core.ClientAuth{Secret: "s"}
		}, "Config.DefaultIssuer.Auth.Secret"},
		{"default issuer secret post", func(c *core.Config) {
			c.AllowAnyIssuer = true
			c.DefaultIssuer.Auth = core.ClientAuth{Secret: "s", AuthStyle: oauth2.AuthStyleInParams}
		}, "Config.DefaultIssuer.Auth.Secret"},
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
	c.DefaultIssuer.Auth = core.ClientAuth{Signer: mustEC(t)}
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
		eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.example/cb",
			Issuers: []core.Issuer{{URL: iss, AuthorizationServer: as}}, AllowInsecureHTTP: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = eng.Launch(context.Background(), "b", iss, "")
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
