package core_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// A smart-configuration that fails for a reason that may pass (a 5xx after
// the retries) is not replaced by the CapabilityStatement for an hour: the
// fallback is kept a minute, then the smart-configuration is asked again.
// One that is not there (404) is an answer: the CapabilityStatement's
// endpoints are kept for the hour.
func TestDiscoveryFallbackAfterABlipIsShortLived(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		faults    smarttest.Faults
		askedBack bool // the smart-configuration is asked again after two minutes
	}{
		{"5xx", smarttest.Faults{FailTimes: map[smarttest.Endpoint]int{smarttest.EndpointDiscovery: 1}}, true},
		{"404", smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointDiscovery: 404}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{MaxRetries: -1}, core.Issuer{})
			h.ehr.SetFaults(tc.faults)
			d, err := h.eng.Discover(ctx, h.ehr.FHIRBaseURL())
			if err != nil {
				t.Fatal(err)
			}
			if d.FHIRVersion == "" {
				t.Fatal("the first discovery did not fall back to the CapabilityStatement")
			}
			h.ehr.SetFaults(smarttest.Faults{})
			h.clock.Advance(30 * time.Second)
			if _, err := h.eng.Discover(ctx, h.ehr.FHIRBaseURL()); err != nil {
				t.Fatal(err)
			}
			if n := h.ehr.Count(smarttest.EndpointDiscovery); n != 1 {
				t.Fatalf("within the minute, the smart-configuration was asked %d times, want once", n)
			}
			h.clock.Advance(90 * time.Second)
			d, err = h.eng.Discover(ctx, h.ehr.FHIRBaseURL())
			if err != nil {
				t.Fatal(err)
			}
			asked := h.ehr.Count(smarttest.EndpointDiscovery)
			switch {
			case tc.askedBack && (asked != 2 || d.FHIRVersion != ""):
				t.Errorf("two minutes after a 5xx: smart-configuration asked %d times (want 2), FHIR version %q (want none: read from the smart-configuration)", asked, d.FHIRVersion)
			case !tc.askedBack && (asked != 1 || d.FHIRVersion == ""):
				t.Errorf("two minutes after a 404: smart-configuration asked %d times (want 1), FHIR version %q (want the CapabilityStatement's)", asked, d.FHIRVersion)
			}
		})
	}
}

// An EHR that serves Backend Services only names no authorization
// endpoint (SMART App Launch 2.2): its discovery succeeds and Backend
// reads, while a launch is refused before anything is stored or any
// redirect, saying why.
func TestBackendOnlyEHRRefusesLaunches(t *testing.T) {
	t.Parallel()
	env := newBackendEnv(t, backendSetup{cfg: core.Config{CallbackURL: "http://app.test/fhir/callback"}})
	env.ehr.SetFaults(smarttest.Faults{DocumentFields: map[smarttest.Endpoint]map[string]any{
		smarttest.EndpointDiscovery: {"authorization_endpoint": nil},
	}})
	ctx := context.Background()
	d, err := env.eng.Discover(ctx, env.iss)
	if err != nil {
		t.Fatalf("Discover of an EHR without authorization_endpoint: %v", err)
	}
	if d.AuthorizationEndpoint != "" || d.TokenEndpoint == "" {
		t.Fatalf("discovered authorization endpoint %q, token endpoint %q", d.AuthorizationEndpoint, d.TokenEndpoint)
	}
	if err := env.backend(t).Read(ctx, "Patient/pat-1", &map[string]any{}); err != nil {
		t.Fatalf("Backend read: %v", err)
	}
	authURL, err := env.eng.Launch(ctx, "b", env.iss, "")
	wantCode(t, err, core.CodeDiscoveryFailed)
	var ce *core.Error
	if errors.As(err, &ce); ce == nil || !strings.Contains(ce.Description, "no authorization_endpoint") {
		t.Errorf("the refusal %v does not say the EHR names no authorization_endpoint", err)
	}
	if authURL != "" {
		t.Errorf("a refused launch gave the authorize URL %q", authURL)
	}
	if n := env.store.len(); n != 1 { // the backend token alone
		t.Errorf("%d records stored; want 1, the backend token", n)
	}
}

// An engine of Backend Services only (no CallbackURL) never launches, so
// it never verifies an id_token: with the default scope, which has openid,
// an EHR whose smart-configuration names no issuer or key set, and whose
// OpenID configuration is down, still serves Backend, and the OpenID
// configuration is not asked for.
func TestBackendOnlyEngineAsksNoOpenIDConfiguration(t *testing.T) {
	t.Parallel()
	env := newBackendEnv(t, backendSetup{})
	env.ehr.SetFaults(smarttest.Faults{
		DocumentFields: map[smarttest.Endpoint]map[string]any{
			smarttest.EndpointDiscovery: {"issuer": nil, "jwks_uri": nil},
		},
		Status: map[smarttest.Endpoint]int{smarttest.EndpointOpenIDConfiguration: http.StatusServiceUnavailable},
	})
	if err := env.backend(t).Read(context.Background(), "Patient/pat-1", &map[string]any{}); err != nil {
		t.Fatalf("Backend read: %v", err)
	}
	if n := env.ehr.Count(smarttest.EndpointOpenIDConfiguration); n != 0 {
		t.Errorf("the OpenID configuration was asked for %d times by an engine that cannot launch", n)
	}
}

// When the EHR fails as its cached configuration expires (its
// smart-configuration and CapabilityStatement answering 503), the cached
// configuration is used a minute longer, then asked again, for at most an
// hour past its expiry: launches and refreshes go on through the blip. A
// degraded answer (the CapabilityStatement alone, after the
// smart-configuration failed) does not replace a full configuration
// either. Past the hour, the failure is the caller's.
func TestDiscoveryServesTheCachedConfigurationThroughABlip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{MaxRetries: -1}, core.Issuer{})
	iss := h.ehr.FHIRBaseURL()
	if _, err := h.eng.Discover(ctx, iss); err != nil {
		t.Fatal(err)
	}
	down := smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointDiscovery: 503, smarttest.EndpointMetadata: 503}}
	degraded := smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointDiscovery: 503}}
	for _, step := range []struct {
		advance time.Duration
		faults  smarttest.Faults
		asked   int // smart-configuration requests so far
		fails   bool
	}{
		{61 * time.Minute, down, 2, false},               // expired, EHR down: the cached one
		{30 * time.Second, down, 2, false},               // within the minute: not asked again
		{31 * time.Second, degraded, 3, false},           // asked again, CapabilityStatement only: still the cached one
		{61 * time.Second, smarttest.Faults{}, 4, false}, // the EHR is back: fetched
		{61 * time.Minute, down, 5, false},               // expired again, down: the cached one
		{58 * time.Minute, down, 6, false},               // still within the hour past expiry
		{2 * time.Minute, down, 7, true},                 // past it: the failure
	} {
		h.clock.Advance(step.advance)
		h.ehr.SetFaults(step.faults)
		d, err := h.eng.Discover(ctx, iss)
		switch {
		case step.fails && err == nil:
			t.Fatalf("after %v more, with the EHR down for over an hour past the expiry, Discover succeeded", step.advance)
		case !step.fails && err != nil:
			t.Fatalf("after %v more: %v", step.advance, err)
		case !step.fails && (d.JWKSURI == "" || d.FHIRVersion != ""):
			t.Fatalf("after %v more: a degraded configuration (jwks_uri %q, FHIR version %q) replaced the full one", step.advance, d.JWKSURI, d.FHIRVersion)
		}
		if n := h.ehr.Count(smarttest.EndpointDiscovery); n != step.asked {
			t.Fatalf("after %v more: the smart-configuration was asked %d times, want %d", step.advance, n, step.asked)
		}
		if !step.fails {
			if _, err := h.eng.Launch(ctx, "b", iss, ""); err != nil {
				t.Fatalf("after %v more, a launch: %v", step.advance, err)
			}
		}
	}
}
