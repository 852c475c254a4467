package core_test

import (
	"context"
	"slices"
	"testing"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// discoverCase is one EHR whose configuration Discover must read.
type discoverCase struct {
	name string
	opts smarttest.Options
	// fromMetadata: the configuration comes from the CapabilityStatement,
	// which names no issuer, key set or capabilities, but the FHIR
	// version; the issuer and key set then come from the OpenID
	// configuration, unless the EHR has none (noOpenID).
	fromMetadata, noOpenID bool
}

func (tc discoverCase) run(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, tc.opts, smarttest.Client{}, core.Config{}, core.Issuer{})
	d, err := h.eng.Discover(ctx, h.ehr.FHIRBaseURL())
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	// Relative endpoints (RelativeEndpoints) come back absolute.
	if d.AuthorizationEndpoint != h.ehr.AuthorizeURL() || d.TokenEndpoint != h.ehr.TokenURL() {
		t.Errorf("endpoints %q and %q, want %q and %q", d.AuthorizationEndpoint, d.TokenEndpoint, h.ehr.AuthorizeURL(), h.ehr.TokenURL())
	}
	if d.RevocationEndpoint != h.ehr.RevocationURL() {
		t.Errorf("RevocationEndpoint %q, want %q", d.RevocationEndpoint, h.ehr.RevocationURL())
	}
	if tc.fromMetadata {
		if len(d.Capabilities) != 0 || d.IssParameterSupported || d.FHIRVersion != "4.0.1" {
			t.Errorf("from the CapabilityStatement: %+v, want the endpoints and FHIR version 4.0.1", d)
		}
		if h.ehr.Count(smarttest.EndpointMetadata) != 1 || h.ehr.Count(smarttest.EndpointOpenIDConfiguration) != 1 {
			t.Errorf("the CapabilityStatement and OpenID configuration were fetched %d and %d times, want once each",
				h.ehr.Count(smarttest.EndpointMetadata), h.ehr.Count(smarttest.EndpointOpenIDConfiguration))
		}
		want := [2]string{h.ehr.AuthIssuer(), h.ehr.JWKSURL()}
		if tc.noOpenID {
			want = [2]string{}
		}
		if got := [2]string{d.Issuer, d.JWKSURI}; got != want {
			t.Errorf("issuer and jwks_uri %q, want %q", got, want)
		}
		return
	}
	if d.FHIRVersion != "" || h.ehr.Count(smarttest.EndpointMetadata) != 0 || h.ehr.Count(smarttest.EndpointOpenIDConfiguration) != 0 {
		t.Errorf("FHIRVersion %q with a smart-configuration, after %d requests for the CapabilityStatement and %d for the OpenID configuration; want none",
			d.FHIRVersion, h.ehr.Count(smarttest.EndpointMetadata), h.ehr.Count(smarttest.EndpointOpenIDConfiguration))
	}
	if d.Issuer != h.ehr.AuthIssuer() || d.JWKSURI != h.ehr.JWKSURL() {
		t.Errorf("issuer %q and jwks_uri %q, want %q and %q", d.Issuer, d.JWKSURI, h.ehr.AuthIssuer(), h.ehr.JWKSURL())
	}
	for _, c := range []string{"launch-ehr", "launch-standalone", "context-ehr-patient", "sso-openid-connect"} {
		if !slices.Contains(d.Capabilities, c) {
			t.Errorf("capabilities %q lack %s", d.Capabilities, c)
		}
	}
	if d.IssParameterSupported != tc.opts.AuthorizationResponseIss {
		t.Errorf("IssParameterSupported %t, want %t", d.IssParameterSupported, tc.opts.AuthorizationResponseIss)
	}
}

func TestDiscover(t *testing.T) {
	for _, tc := range []discoverCase{
		{name: "smart-configuration"},
		{name: "smart-configuration with RFC 9207 iss", opts: smarttest.Options{AuthorizationResponseIss: true}},
		{name: "relative endpoints resolved", opts: smarttest.Options{RelativeEndpoints: true}},
		{name: "CapabilityStatement", opts: smarttest.Options{NoSmartConfiguration: true}, fromMetadata: true},
		{name: "CapabilityStatement with relative endpoints", opts: smarttest.Options{NoSmartConfiguration: true, RelativeEndpoints: true}, fromMetadata: true},
		{name: "CapabilityStatement without OpenID configuration", opts: smarttest.Options{NoSmartConfiguration: true, NoOpenIDConfiguration: true}, fromMetadata: true, noOpenID: true},
	} {
		t.Run(tc.name, tc.run)
	}
}

// Discover answers from the engine's cache, which launches share, and
// hands out a copy: what the caller changes in it changes nothing the
// engine uses.
func TestDiscoverIsCachedAndACopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	d, err := h.eng.Discover(ctx, h.ehr.FHIRBaseURL())
	if err != nil {
		t.Fatal(err)
	}
	want := *d
	want.Capabilities = slices.Clone(d.Capabilities)
	d.AuthorizationEndpoint, d.TokenEndpoint, d.Issuer = "https://evil.test/authorize", "https://evil.test/token", "https://evil.test"
	d.Capabilities[0] = "changed"

	again, err := h.eng.Discover(ctx, h.ehr.FHIRBaseURL())
	if err != nil {
		t.Fatal(err)
	}
	if again.AuthorizationEndpoint != want.AuthorizationEndpoint || again.TokenEndpoint != want.TokenEndpoint || again.Issuer != want.Issuer ||
		!slices.Equal(again.Capabilities, want.Capabilities) {
		t.Fatalf("after the caller changed its copy, Discover gives %+v, want %+v", again, want)
	}
	// A launch uses the same cache, unchanged.
	rc := h.complete("b", &pat1)
	if rc.Patient().ID != "pat-1" {
		t.Fatalf("patient %q", rc.Patient().ID)
	}
	if n := h.ehr.Count(smarttest.EndpointDiscovery); n != 1 {
		t.Errorf("two Discovers and a launch fetched the configuration %d times, want once", n)
	}
}

// An issuer the engine refuses is refused before any request: none of
// these reaches the EHR, though each names it.
func TestDiscoverRefusesBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	base := h.ehr.FHIRBaseURL()
	anyIssuer, err := core.New(core.Config{ClientID: "app", CallbackURL: "http://app.test/cb", AllowAnyIssuer: true,
		AllowInsecureHTTP: true, AllowPrivateNetworks: true, Issuers: []core.Issuer{{URL: base}}})
	if err != nil {
		t.Fatal(err)
	}
	httpsOnly, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb", AllowAnyIssuer: true, AllowPrivateNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		eng  *core.Engine
		iss  string
		code core.Code
	}{
		{"not configured", h.eng, h.ehr.URL() + "/other/fhir", core.CodeUnknownIssuer},
		{"on a configured issuer's origin", anyIssuer, h.ehr.URL() + "/other/fhir", core.CodeUnknownIssuer},
		{"http without AllowInsecureHTTP", httpsOnly, base, core.CodeUnknownIssuer},
		{"with a query", h.eng, base + "?x=1", core.CodeInvalidRequest},
		{"with a fragment", h.eng, base + "#x", core.CodeInvalidRequest},
		{"relative", h.eng, "/fhir", core.CodeInvalidRequest},
		{"empty", h.eng, "", core.CodeInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := tc.eng.Discover(ctx, tc.iss)
			wantCode(t, err, tc.code)
			if d != nil {
				t.Errorf("a refused issuer gave %+v", d)
			}
		})
	}
	if n := h.ehr.Count(smarttest.EndpointDiscovery) + h.ehr.Count(smarttest.EndpointMetadata); n != 0 {
		t.Fatalf("refused issuers made %d requests to the EHR", n)
	}
	// The count is live: the configured issuer is asked.
	if _, err := h.eng.Discover(ctx, base); err != nil {
		t.Fatal(err)
	}
	if n := h.ehr.Count(smarttest.EndpointDiscovery); n != 1 {
		t.Fatalf("the configured issuer was asked %d times, want once", n)
	}
}
