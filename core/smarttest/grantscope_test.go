package smarttest_test

import (
	"testing"

	"github.com/fhirware/smart/core/smarttest"
)

// TestGrantScope: Faults.GrantScope replaces the requested scope in the
// token response, and decides the id_token and the refresh token.
func TestGrantScope(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	s.SetFaults(smarttest.Faults{GrantScope: "launch/patient patient/Patient.read"})
	tok := login(t, s, "scope", "launch/patient openid fhirUser patient/*.read offline_access")
	if got := str(tok["scope"]); got != "launch/patient patient/Patient.read" {
		t.Errorf("scope = %q, want the granted one", got)
	}
	if tok["id_token"] != nil || tok["refresh_token"] != nil {
		t.Errorf("a grant without openid and offline_access came with an id_token or a refresh token: %v", tok)
	}
	s.SetFaults(smarttest.Faults{})
	if got := str(login(t, s, "scope", "openid patient/*.read")["scope"]); got != "openid patient/*.read" {
		t.Errorf("without the fault, scope = %q, want the requested one", got)
	}
}
