package core_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/scope"
	"github.com/fhirware/smart/core/smarttest"
)

// TestScopeDowngradeReport: an EHR that grants less than the default scope
// asked for gives a launch whose MissingScopes names what it left out, in
// the app's words, and whose GrantedScope allows only what was granted;
// the report survives the launch's storage.
func TestScopeDowngradeReport(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	h.ehr.SetFaults(smarttest.Faults{GrantScope: "launch openid patient/Patient.read"})
	rc := h.complete("browser-1", &smarttest.LaunchContext{Patient: "pat-1"})

	want := []string{"fhirUser", "patient/*.read", "offline_access"}
	if got := rc.MissingScopes(); !reflect.DeepEqual(got, want) {
		t.Errorf("MissingScopes after the callback = %q, want %q", got, want)
	}
	g := rc.GrantedScope()
	if !g.Allows("patient", "Patient", scope.Read|scope.Search) {
		t.Errorf("GrantedScope %q does not allow reading Patient", g)
	}
	if g.Allows("patient", "Observation", scope.Read) {
		t.Errorf("GrantedScope %q allows reading Observation", g)
	}
	again, err := h.eng.Ready(context.Background(), "browser-1", rc.Handle())
	if err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if got := again.MissingScopes(); !reflect.DeepEqual(got, want) {
		t.Errorf("MissingScopes after Ready = %q, want %q", got, want)
	}
}

// TestScopeGrantedInFull: a grant of what was asked, or of its version 2
// equivalent, misses nothing.
func TestScopeGrantedInFull(t *testing.T) {
	t.Parallel()
	for _, grant := range []string{"", "launch openid fhirUser patient/*.rs offline_access"} {
		h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
		h.ehr.SetFaults(smarttest.Faults{GrantScope: grant})
		rc := h.complete("browser-1", &smarttest.LaunchContext{Patient: "pat-1"})
		if got := rc.MissingScopes(); got != nil {
			t.Errorf("grant %q: MissingScopes = %q, want none", grant, got)
		}
		if !rc.GrantedScope().Allows("patient", "Observation", scope.Read|scope.Search) {
			t.Errorf("grant %q: GrantedScope %q does not allow reading Observation", grant, rc.GrantedScope())
		}
	}
}

// TestScopeDenied: with Config.RequiredScope, a grant that lacks it fails
// the callback with scope_denied naming the missing scope (and nothing of
// the EHR's grant), stores no launch, and leaves the browser without one.
func TestScopeDenied(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{},
		core.Config{Scope: "launch openid fhirUser patient/Patient.read patient/Observation.rs", RequiredScope: "patient/Patient.read patient/Observation.rs"},
		core.Issuer{})
	h.ehr.SetFaults(smarttest.Faults{GrantScope: "launch openid fhirUser patient/Patient.read patient/Condition.rs"})
	_, err := h.eng.Callback(context.Background(), "browser-1", h.launch("browser-1", &smarttest.LaunchContext{Patient: "pat-1"}))
	wantCode(t, err, core.CodeScopeDenied)
	if !errors.Is(err, core.CodeScopeDenied) || core.CodeScopeDenied.HTTPStatus() != http.StatusForbidden {
		t.Errorf("scope_denied is not errors.Is-able or not 403: %v, %d", err, core.CodeScopeDenied.HTTPStatus())
	}
	var ce *core.Error
	errors.As(err, &ce)
	if want := "patient/Observation.rs"; !strings.HasSuffix(ce.Description, ": "+want) {
		t.Errorf("Description %q does not name exactly the missing %s", ce.Description, want)
	}
	if strings.Contains(ce.Error(), "Condition") {
		t.Errorf("the error %q carries the EHR's grant", ce)
	}
	h.store.mu.Lock()
	for k := range h.store.data {
		if strings.HasPrefix(k, "launch:") || strings.HasPrefix(k, "launches:") {
			t.Errorf("a launch was stored: %s", k)
		}
	}
	h.store.mu.Unlock()
	_, err = h.eng.Ready(context.Background(), "browser-1", "")
	wantCode(t, err, core.CodeNoLaunch)
}

// TestScopeRequiredCoveredByWiderGrant: a required version 2 scope on one
// type is met by a granted version 1 wildcard.
func TestScopeRequiredCoveredByWiderGrant(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{RequiredScope: "openid patient/Observation.rs"}, core.Issuer{})
	rc := h.complete("browser-1", &smarttest.LaunchContext{Patient: "pat-1"})
	if _, err := h.eng.Ready(context.Background(), "browser-1", rc.Handle()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

// An EHR that grants a scope of more than 64 KiB (a hostile one, whose
// scope would otherwise be parsed on every question the app asks of the
// grant) fails the callback with token_exchange_failed, and nothing is
// stored.
func TestHugeGrantedScopeRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	var b strings.Builder
	b.WriteString("launch openid fhirUser patient/*.read offline_access")
	for i := 0; b.Len() <= 64<<10; i++ {
		b.WriteString(" patient/Type" + strconv.Itoa(i) + ".rs")
	}
	h.ehr.SetFaults(smarttest.Faults{GrantScope: b.String()})
	cb := h.launch("browser-1", &smarttest.LaunchContext{Patient: "pat-1"})
	stored := h.store.len()
	_, err := h.eng.Callback(context.Background(), "browser-1", cb)
	wantCode(t, err, core.CodeTokenExchangeFailed)
	if !strings.Contains(err.Error(), "scope longer than 64 KiB") {
		t.Errorf("error %q does not say the scope is too long", err)
	}
	if n := h.store.len(); n >= stored {
		t.Errorf("%d records after the refused callback, %d before: the pending launch should be taken and no launch stored", n, stored)
	}
}
