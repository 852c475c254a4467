package core_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// An issuer's configuration is kept in the engine's cache, for every
// issuer a launch names with AllowAnyIssuer. A hostile EHR's
// smart-configuration within the 1 MiB response cap (a capabilities list
// of 200,000 short names costs 4 MiB of memory decoded, an endpoint URL
// of most of a megabyte) is refused (here with no CapabilityStatement to
// fall back on), and an optional endpoint that long is left out: real
// configurations list a few dozen capabilities and name URLs of a few
// hundred bytes.
func TestDiscoveryRefusesOversizedConfiguration(t *testing.T) {
	t.Parallel()
	many := make([]string, 0, 1000)
	for i := range cap(many) {
		many = append(many, "cap-"+strconv.Itoa(i))
	}
	for _, tc := range []struct {
		name   string
		fields func(root string) map[string]any
		ok     bool // discovered, without the field
	}{
		{"many capabilities", func(string) map[string]any { return map[string]any{"capabilities": many} }, false},
		{"long capability", func(string) map[string]any {
			return map[string]any{"capabilities": []string{"launch-ehr", strings.Repeat("x", 8<<10)}}
		}, false},
		{"long token endpoint", func(root string) map[string]any {
			return map[string]any{"token_endpoint": root + "/token/" + strings.Repeat("a", 512<<10)}
		}, false},
		{"long revocation endpoint", func(root string) map[string]any {
			return map[string]any{"revocation_endpoint": root + "/revoke?" + strings.Repeat("a", 512<<10)}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{MaxRetries: -1}, core.Issuer{})
			iss := h.ehr.FHIRBaseURL()
			h.ehr.SetFaults(smarttest.Faults{
				DocumentFields: map[smarttest.Endpoint]map[string]any{smarttest.EndpointDiscovery: tc.fields(strings.TrimSuffix(iss, "/fhir"))},
				Status:         map[smarttest.Endpoint]int{smarttest.EndpointMetadata: 404},
			})
			d, err := h.eng.Discover(context.Background(), iss)
			if tc.ok {
				if err != nil || d.RevocationEndpoint != "" || d.TokenEndpoint == "" {
					t.Fatalf("Discover = revocation endpoint of %d bytes, token endpoint %q, %v; want the revocation endpoint left out", len(d.RevocationEndpoint), d.TokenEndpoint, err)
				}
				return
			}
			wantCode(t, err, core.CodeDiscoveryFailed)
			if d != nil {
				t.Errorf("Discover returned a configuration: %d capabilities", len(d.Capabilities))
			}
		})
	}
}
