package adapters_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core/smarttest"
)

// A launch whose grant lacks Config.RequiredScope ends at the callback on
// a 403 page that names the code and the missing scope, and leaves the
// browser without a launch.
func TestScopeDeniedPage(t *testing.T) {
	t.Parallel()
	a := newSharedApp(t, func(cfg *adapters.Config) {
		cfg.RequiredScope = "patient/Observation.rs"
	})
	a.ehr.SetFaults(smarttest.Faults{GrantScope: "launch openid fhirUser patient/Patient.read offline_access"})
	resp, err := a.browser.Get(a.ehr.EHRLaunchURL(a.srv.URL+"/fhir/launch", smarttest.LaunchContext{Patient: "pat-1"}))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "scope_denied") || !strings.Contains(string(b), "patient/Observation.rs") {
		t.Errorf("the callback answered %d %.400s, want 403 naming scope_denied and patient/Observation.rs", resp.StatusCode, b)
	}
	if !strings.HasSuffix(resp.Request.URL.Path, "/fhir/callback") {
		t.Errorf("the launch ended at %s, want the callback", resp.Request.URL.Path)
	}

	req, _ := http.NewRequest(http.MethodGet, a.srv.URL+"/fhir/", nil)
	req.Header.Set("Accept", "application/json")
	resp, err = a.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), `"no_launch"`) {
		t.Errorf("the app's page answered %d %.300s, want 401 no_launch", resp.StatusCode, b)
	}
}
