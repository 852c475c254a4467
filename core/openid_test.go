package core_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// wantVerifiedLaunch completes an openid launch at h's EHR and checks that
// its id_token was verified against the EHR's OpenID issuer.
func wantVerifiedLaunch(t *testing.T, h *harness) *core.ReadyClient {
	t.Helper()
	rc := h.complete("b", &pat1)
	lc := rc.LaunchContext()
	if lc.Subject == "" || lc.AuthIssuer != h.ehr.AuthIssuer() || rc.User().String() != "Practitioner/prac-1" {
		t.Fatalf("launch context %+v: want the id_token's sub, iss %s and fhirUser Practitioner/prac-1", lc, h.ehr.AuthIssuer())
	}
	if n := h.ehr.Count(smarttest.EndpointJWKS); n == 0 {
		t.Fatal("the id_token was accepted without fetching the key set")
	}
	return rc
}

// An EHR with a CapabilityStatement and an OpenID configuration, and no
// smart-configuration, completes an openid launch: the id_token is
// verified against the OpenID configuration's issuer and key set, and the
// launch's FHIR requests ask for the CapabilityStatement's FHIR version.
func TestOpenIDConfigurationCompletesALaunch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, smarttest.Options{NoSmartConfiguration: true}, smarttest.Client{}, core.Config{}, core.Issuer{})
	rc := wantVerifiedLaunch(t, h)
	if n := h.ehr.Count(smarttest.EndpointOpenIDConfiguration); n != 1 {
		t.Errorf("the OpenID configuration was fetched %d times, want once", n)
	}

	d, err := h.eng.Discover(ctx, h.ehr.FHIRBaseURL())
	if err != nil {
		t.Fatal(err)
	}
	if d.FHIRVersion != "4.0.1" || d.Issuer != h.ehr.AuthIssuer() || d.JWKSURI != h.ehr.JWKSURL() {
		t.Errorf("Discover: FHIR version %q, issuer %q, jwks_uri %q; want 4.0.1, %s, %s", d.FHIRVersion, d.Issuer, d.JWKSURI, h.ehr.AuthIssuer(), h.ehr.JWKSURL())
	}

	// The version goes with the FHIR client's requests, and with requests
	// through its HTTPClient that set no Accept of their own; smarttest
	// answers 406 to any other version.
	var p struct{ ID string }
	if err := rc.FHIR().Read(ctx, "Patient/pat-1", &p); err != nil || p.ID != "pat-1" {
		t.Fatalf("Read: %+v, %v", p, err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.ehr.FHIRBaseURL()+"/Patient/pat-2", nil)
	resp, err := rc.FHIR().HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("through HTTPClient: status %d", resp.StatusCode)
	}
	accepts := h.ehr.FHIRAccepts()
	if len(accepts) != 2 {
		t.Fatalf("Accept headers %q, want two", accepts)
	}
	for _, a := range accepts {
		if a != "application/fhir+json; fhirVersion=4.0" {
			t.Errorf("Accept %q, want application/fhir+json; fhirVersion=4.0", a)
		}
	}

	// The version is kept with the launch: Ready, from the stored record,
	// asks for it too.
	again, err := h.eng.Ready(ctx, "b", rc.Handle())
	if err != nil {
		t.Fatal(err)
	}
	if err := again.FHIR().Read(ctx, "Patient/pat-1", &p); err != nil {
		t.Fatal(err)
	}
	if a := h.ehr.FHIRAccepts(); a[len(a)-1] != "application/fhir+json; fhirVersion=4.0" {
		t.Errorf("after Ready: Accept %q", a[len(a)-1])
	}

	// The key set really checks the id_token: a forged one is refused.
	h.ehr.SetFaults(smarttest.Faults{IDToken: smarttest.IDTokenBadSignature})
	_, err = h.eng.Callback(ctx, "b2", h.launch("b2", &pat1))
	wantCode(t, err, core.CodeInvalidIDToken)
}

// A smart-configuration without issuer and jwks_uri is completed from the
// OpenID configuration too, at the issuer its endpoints share; its FHIR
// version is not known (no CapabilityStatement is fetched), so none is
// asked for.
func TestOpenIDConfigurationCompletesASmartConfiguration(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	h.ehr.SetFaults(smarttest.Faults{DocumentFields: map[smarttest.Endpoint]map[string]any{
		smarttest.EndpointDiscovery: {"issuer": nil, "jwks_uri": nil},
	}})
	rc := wantVerifiedLaunch(t, h)
	if n := h.ehr.Count(smarttest.EndpointMetadata); n != 0 {
		t.Errorf("the CapabilityStatement was fetched %d times", n)
	}
	if err := rc.FHIR().Read(context.Background(), "Patient/pat-1", new(struct{})); err != nil {
		t.Fatal(err)
	}
	if a := h.ehr.FHIRAccepts(); len(a) != 1 || a[0] != "application/fhir+json" {
		t.Errorf("Accept headers %q, want application/fhir+json without a version", a)
	}
}

// A configured AuthorizationServer names the OpenID issuer: its
// configuration is read there, and must declare exactly it.
func TestOpenIDConfigurationAtTheAuthorizationServer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		server func(ehr *smarttest.Server) string
		ok     bool
	}{
		{"the issuer", func(ehr *smarttest.Server) string { return ehr.AuthIssuer() }, true},
		{"another issuer on the same origin", func(ehr *smarttest.Server) string { return ehr.URL() + "/other" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, smarttest.Options{NoSmartConfiguration: true}, smarttest.Client{}, core.Config{}, core.Issuer{})
			// The engine is made again with the server's URL, known only now.
			cfg := h.eng.Config()
			cfg.Issuers[0].AuthorizationServer = tc.server(h.ehr)
			eng, err := core.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			h.eng = eng
			if tc.ok {
				wantVerifiedLaunch(t, h)
				return
			}
			_, err = h.eng.Launch(context.Background(), "b", h.ehr.FHIRBaseURL(), "")
			wantCode(t, err, core.CodeDiscoveryFailed)
		})
	}
}

// refusedLaunch is an EHR that cannot vouch for the id_tokens an openid
// launch asks for: the launch must be refused at Launch, before the
// browser goes anywhere, with a description that says what the EHR
// lacks and what the app can do.
type refusedLaunch struct {
	name   string
	opts   smarttest.Options
	fields func(ehr *smarttest.Server) map[smarttest.Endpoint]map[string]any
	says   string // in the description
}

func (tc refusedLaunch) run(t *testing.T) {
	t.Parallel()
	h := newHarness(t, tc.opts, smarttest.Client{}, core.Config{}, core.Issuer{})
	if tc.fields != nil {
		h.ehr.SetFaults(smarttest.Faults{DocumentFields: tc.fields(h.ehr)})
	}
	wantRefusedLaunch(t, h, tc.says)
}

// wantRefusedLaunch checks that a launch at h's EHR is refused before any
// redirect, with a description that says what and why.
func wantRefusedLaunch(t *testing.T, h *harness, says string) {
	t.Helper()
	for _, launch := range []string{h.ehr.NewLaunch(pat1), ""} { // EHR and standalone
		authURL, err := h.eng.Launch(context.Background(), "b", h.ehr.FHIRBaseURL(), launch)
		wantCode(t, err, core.CodeDiscoveryFailed)
		var ce *core.Error
		errors.As(err, &ce)
		for _, want := range []string{says, "openid", "Drop openid and fhirUser from the scope", "AuthorizationServer"} {
			if !strings.Contains(ce.Description, want) {
				t.Errorf("description %q does not say %q", ce.Description, want)
			}
		}
		if strings.Contains(ce.Description, h.ehr.URL()) || strings.Contains(ce.Description, "evil") || strings.Contains(ce.Description, "169.254") {
			t.Errorf("description %q quotes the EHR", ce.Description)
		}
		if authURL != "" {
			t.Errorf("a refused launch gave the authorize URL %q", authURL)
		}
	}
	if n := h.ehr.Count(smarttest.EndpointAuthorize) + h.ehr.Count(smarttest.EndpointJWKS) + h.ehr.Count(smarttest.EndpointToken); n != 0 {
		t.Errorf("a refused launch made %d requests to the authorize, JWKS and token endpoints", n)
	}
	if n := h.store.len(); n != 0 {
		t.Errorf("a refused launch stored %d records", n)
	}
}

func TestLaunchRefusedWhenNothingVerifiesTheIDToken(t *testing.T) {
	other := "http://evil.example:8443"
	for _, tc := range []refusedLaunch{
		{
			name: "no smart-configuration and no OpenID configuration",
			opts: smarttest.Options{NoSmartConfiguration: true, NoOpenIDConfiguration: true},
			says: "the EHR publishes no SMART configuration (.well-known/smart-configuration), and its CapabilityStatement names no issuer or key set, and its authorization server publishes no OpenID configuration (.well-known/openid-configuration)",
		},
		{
			name: "a smart-configuration without issuer and jwks_uri and no OpenID configuration",
			opts: smarttest.Options{NoOpenIDConfiguration: true},
			fields: func(*smarttest.Server) map[smarttest.Endpoint]map[string]any {
				return map[smarttest.Endpoint]map[string]any{smarttest.EndpointDiscovery: {"issuer": nil, "jwks_uri": nil}}
			},
			says: "the EHR's SMART configuration (.well-known/smart-configuration) names no issuer or no jwks_uri, and its authorization server publishes no OpenID configuration",
		},
		{
			name: "a smart-configuration with an issuer and no jwks_uri, whose OpenID configuration names another issuer",
			fields: func(ehr *smarttest.Server) map[smarttest.Endpoint]map[string]any {
				return map[smarttest.Endpoint]map[string]any{
					smarttest.EndpointDiscovery:           {"jwks_uri": nil},
					smarttest.EndpointOpenIDConfiguration: {"issuer": ehr.AuthIssuer() + "/"},
				}
			},
			says: "declares another issuer than the one it is published under (OpenID Connect Discovery 1.0, section 4.3)",
		},
		{
			name: "an OpenID configuration with a mismatched issuer",
			opts: smarttest.Options{NoSmartConfiguration: true},
			fields: func(ehr *smarttest.Server) map[smarttest.Endpoint]map[string]any {
				return map[smarttest.Endpoint]map[string]any{smarttest.EndpointOpenIDConfiguration: {"issuer": ehr.URL() + "/other"}}
			},
			says: "declares another issuer than the one it is published under",
		},
		{
			name: "an OpenID configuration declaring an issuer on another origin",
			opts: smarttest.Options{NoSmartConfiguration: true},
			fields: func(*smarttest.Server) map[smarttest.Endpoint]map[string]any {
				return map[smarttest.Endpoint]map[string]any{smarttest.EndpointOpenIDConfiguration: {"issuer": other + "/auth"}}
			},
			says: "declares another issuer than the one it is published under",
		},
		{
			name: "an OpenID configuration without jwks_uri",
			opts: smarttest.Options{NoSmartConfiguration: true},
			fields: func(*smarttest.Server) map[smarttest.Endpoint]map[string]any {
				return map[smarttest.Endpoint]map[string]any{smarttest.EndpointOpenIDConfiguration: {"jwks_uri": nil}}
			},
			says: "the OpenID configuration of its authorization server names no issuer or no jwks_uri",
		},
		{
			name: "an OpenID configuration with its jwks_uri on another origin",
			opts: smarttest.Options{NoSmartConfiguration: true},
			fields: func(*smarttest.Server) map[smarttest.Endpoint]map[string]any {
				return map[smarttest.Endpoint]map[string]any{smarttest.EndpointOpenIDConfiguration: {"jwks_uri": other + "/jwks"}}
			},
			says: "points outside the issuer's origin",
		},
		{
			name: "an OpenID configuration with its jwks_uri at the cloud metadata address",
			opts: smarttest.Options{NoSmartConfiguration: true},
			fields: func(*smarttest.Server) map[smarttest.Endpoint]map[string]any {
				return map[smarttest.Endpoint]map[string]any{smarttest.EndpointOpenIDConfiguration: {"jwks_uri": "http://169.254.169.254/latest/meta-data/jwks"}}
			},
			says: "points outside the issuer's origin",
		},
		{
			name: "an OpenID configuration with a relative jwks_uri",
			opts: smarttest.Options{NoSmartConfiguration: true},
			fields: func(*smarttest.Server) map[smarttest.Endpoint]map[string]any {
				return map[smarttest.Endpoint]map[string]any{smarttest.EndpointOpenIDConfiguration: {"jwks_uri": "/auth/jwks"}}
			},
			says: "the jwks_uri of the OpenID configuration of its authorization server is unusable",
		},
	} {
		t.Run(tc.name, tc.run)
	}
}

// A malformed OpenID configuration is an answer too: the launch is
// refused with what it lacks.
func TestLaunchRefusedWithAMalformedOpenIDConfiguration(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{NoSmartConfiguration: true}, smarttest.Client{}, core.Config{}, core.Issuer{})
	h.ehr.SetFaults(smarttest.Faults{MalformedJSON: map[smarttest.Endpoint]bool{smarttest.EndpointOpenIDConfiguration: true}})
	wantRefusedLaunch(t, h, "the OpenID configuration of its authorization server (.well-known/openid-configuration) is malformed")
}

// An OpenID configuration that fails (5xx after the retries) fails the
// discovery, which is not cached: the next launch asks again and, the EHR
// well again, goes through.
func TestFailingOpenIDConfigurationIsAskedAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, smarttest.Options{NoSmartConfiguration: true}, smarttest.Client{}, core.Config{MaxRetries: -1}, core.Issuer{})
	h.ehr.SetFaults(smarttest.Faults{FailTimes: map[smarttest.Endpoint]int{smarttest.EndpointOpenIDConfiguration: 1}})
	_, err := h.eng.Launch(ctx, "b", h.ehr.FHIRBaseURL(), "")
	wantCode(t, err, core.CodeDiscoveryFailed)
	if !strings.Contains(err.Error(), "openid-configuration: answered 500") {
		t.Errorf("error %q does not name the failing document", err)
	}
	if n := h.store.len(); n != 0 {
		t.Errorf("the failed launch stored %d records", n)
	}
	wantVerifiedLaunch(t, h)
	if n := h.ehr.Count(smarttest.EndpointOpenIDConfiguration); n != 2 {
		t.Errorf("the OpenID configuration was asked %d times, want twice", n)
	}
}

// Without openid in the scope, nothing needs to verify an id_token: an EHR
// with a CapabilityStatement alone launches, and its OpenID configuration
// is not asked for. An id_token it sends all the same (it grants openid
// unasked) is left unread rather than failing the launch.
func TestCapabilityStatementAloneLaunchesWithoutOpenID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, smarttest.Options{NoSmartConfiguration: true, NoOpenIDConfiguration: true}, smarttest.Client{},
		core.Config{Scope: "launch patient/*.read offline_access"}, core.Issuer{})
	rc := h.complete("b", &pat1)
	if rc.Patient().ID != "pat-1" || rc.LaunchContext().Subject != "" {
		t.Errorf("patient %q, subject %q: want pat-1 and no identity", rc.Patient().ID, rc.LaunchContext().Subject)
	}
	if n := h.ehr.Count(smarttest.EndpointOpenIDConfiguration); n != 0 {
		t.Errorf("the OpenID configuration was asked %d times, though the scope has no openid", n)
	}
	if err := rc.FHIR().Read(ctx, "Patient/pat-1", new(struct{})); err != nil {
		t.Fatal(err)
	}
	if a := h.ehr.FHIRAccepts(); len(a) != 1 || a[0] != "application/fhir+json; fhirVersion=4.0" {
		t.Errorf("Accept headers %q, want the CapabilityStatement's version", a)
	}

	h.ehr.SetFaults(smarttest.Faults{GrantScope: "launch openid fhirUser patient/*.read offline_access"})
	rc = h.complete("b", &pat1)
	if rc.LaunchContext().Subject != "" || !rc.User().IsZero() {
		t.Errorf("an unasked id_token was read: %+v", rc.LaunchContext())
	}
	// Its refresh, with an id_token again, keeps the launch.
	h.ehr.ExpireAccessTokens()
	h.clock.Advance(2 * time.Hour)
	if _, err := h.eng.Ready(ctx, "b", rc.Handle()); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if n := h.ehr.Count(smarttest.EndpointTokenRefresh); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
}

// With AllowAnyIssuer, the OpenID configuration is fetched through the
// guarded client, from the issuer's own origin, and what it names is bound
// to that origin: a hostile one pointing its key set at the cloud metadata
// address or another host is refused at Launch, and nothing is fetched
// there.
func TestOpenIDConfigurationWithAllowAnyIssuer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		jwks string // the OpenID configuration's jwks_uri; "" keeps the EHR's own
	}{
		{"honest", ""},
		{"jwks_uri at the metadata address", "http://169.254.169.254/latest/meta-data/jwks"},
		{"jwks_uri on another host", "http://127.0.0.2:1/auth/jwks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The EHR is on loopback; the dialer reports a public address, so
			// that the guard lets it through as it would a public EHR.
			d := &dialCounter{remote: &net.TCPAddr{IP: net.IPv4(8, 8, 8, 8), Port: 80}}
			h := newHarness(t, smarttest.Options{NoSmartConfiguration: true, AuthorizationResponseIss: true}, smarttest.Client{},
				core.Config{AllowAnyIssuer: true, HTTPClient: &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}}, core.Issuer{})
			if tc.jwks == "" {
				wantVerifiedLaunch(t, h)
				return
			}
			h.ehr.SetFaults(smarttest.Faults{DocumentFields: map[smarttest.Endpoint]map[string]any{
				smarttest.EndpointOpenIDConfiguration: {"jwks_uri": tc.jwks},
			}})
			wantRefusedLaunch(t, h, "points outside the issuer's origin")
		})
	}
}

// A CapabilityStatement's fhirVersion is the EHR's text: only a version
// is kept, and nothing else reaches the launch's request headers.
func TestHostileFHIRVersionIsDropped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, v := range []any{"4.0\r\nX-Injected: 1", "4.0; q=0", "R4", "4", "4.0.1.0", "../4.0", 4.01, strings.Repeat("1", 100)} {
		h := newHarness(t, smarttest.Options{NoSmartConfiguration: true, NoOpenIDConfiguration: true}, smarttest.Client{},
			core.Config{Scope: "launch patient/*.read"}, core.Issuer{})
		h.ehr.SetFaults(smarttest.Faults{DocumentFields: map[smarttest.Endpoint]map[string]any{smarttest.EndpointMetadata: {"fhirVersion": v}}})
		d, err := h.eng.Discover(ctx, h.ehr.FHIRBaseURL())
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if d.FHIRVersion != "" {
			t.Errorf("fhirVersion %q kept as %q", v, d.FHIRVersion)
		}
		rc := h.complete("b", &pat1)
		if err := rc.FHIR().Read(ctx, "Patient/pat-1", new(struct{})); err != nil {
			t.Fatal(err)
		}
		if a := h.ehr.FHIRAccepts(); len(a) != 1 || a[0] != "application/fhir+json" {
			t.Errorf("fhirVersion %q: Accept headers %q", v, a)
		}
	}
}
