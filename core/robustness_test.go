package core_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// A token endpoint that cannot answer a refresh leaves the launch alive:
// the error says the EHR failed (502), and a later request refreshes.
func TestRefreshOnAFailingEHRKeepsTheLaunch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{MaxRetries: -1}, core.Issuer{})
	res := h.complete("b", &pat1)
	h.clock.Advance(2 * time.Hour)
	h.ehr.SetFaults(smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointTokenRefresh: 503}})
	_, err := h.eng.Ready(context.Background(), "b", res.Handle())
	wantCode(t, err, core.CodeTokenExchangeFailed)
	h.ehr.SetFaults(smarttest.Faults{})
	if _, err := h.eng.Ready(context.Background(), "b", res.Handle()); err != nil {
		t.Fatalf("after the EHR came back: %v", err)
	}
}

// A revoked grant ends its launch and takes its handle off the browser's
// list, so a request without a handle falls back to the launch before it.
func TestRevokedLaunchLeavesTheList(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	older := h.complete("b", &smarttest.LaunchContext{Patient: "pat-2"})
	h.clock.Advance(30 * time.Minute)
	newer := h.complete("b", &pat1)
	h.clock.Advance(65 * time.Minute) // both tokens expired
	h.ehr.SetFaults(smarttest.Faults{RevokeRefresh: true})
	_, err := h.eng.Ready(context.Background(), "b", newer.Handle())
	wantCode(t, err, core.CodeRefreshFailed)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("the refusal does not carry the EHR's answer: %v", err)
	}
	if re.Response.Request != nil {
		t.Fatal("the kept token endpoint response still holds its request, with the refresh token")
	}
	h.ehr.SetFaults(smarttest.Faults{})
	_, err = h.eng.Ready(context.Background(), "b", newer.Handle())
	wantCode(t, err, core.CodeNoLaunch)
	// Had the ended launch stayed on the list, as the most recent, a
	// request without a handle would find it and fail.
	rc, err := h.eng.Ready(context.Background(), "b", "")
	if err != nil || rc.Handle() != older.Handle() || rc.Patient().ID != "pat-2" {
		t.Fatalf("without a handle: %v, %v; want the older launch", rc, err)
	}
}

// Each caller of Context gets its own copy of the launch context.
func TestContextIsTheCallersCopy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	lc := pat1
	lc.Extra = map[string]any{"vendor_flag": "on"}
	res := h.complete("b", &lc)
	rc, err := h.eng.Ready(context.Background(), "b", res.Handle())
	if err != nil {
		t.Fatal(err)
	}
	mine := rc.LaunchContext()
	mine.Extra["vendor_flag"] = []byte(`"changed"`)
	if got := string(rc.LaunchContext().Extra["vendor_flag"]); got != `"on"` {
		t.Fatalf("the same client's next Context sees %s", got)
	}
	rc2, err := h.eng.Ready(context.Background(), "b", res.Handle())
	if err != nil {
		t.Fatal(err)
	}
	if got := string(rc2.LaunchContext().Extra["vendor_flag"]); got != `"on"` {
		t.Fatalf("another request sees %s", got)
	}
}

// An id the EHR sends in the launch context that is not a FHIR id is left
// out, so it never becomes part of a request path.
func TestMalformedContextIDsAreLeftOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	res := h.complete("b", &smarttest.LaunchContext{Patient: "pat-1/../../Practitioner/prac-1", Encounter: "enc-1?x=1"})
	if lc := res.LaunchContext(); lc.Patient != "" || lc.Encounter != "" {
		t.Fatalf("kept patient %q, encounter %q", lc.Patient, lc.Encounter)
	}
}

// A FHIR server that forbids a read (a resource outside the granted
// scopes) gives its own answer, a *fhir.Error with status 403; the launch
// is not ended for it.
func TestFHIRForbidden(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	res := h.complete("b", &pat1)
	rc, err := h.eng.Ready(context.Background(), "b", res.Handle())
	if err != nil {
		t.Fatal(err)
	}
	h.ehr.SetFaults(smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointFHIR: 403}})
	var p struct{ ID string }
	err = readPatient(context.Background(), rc, &p)
	wantFHIRStatus(t, err, http.StatusForbidden)
	if code := codeOf(err); code != "" {
		t.Errorf("the FHIR server's 403 gave the launch error %s", code)
	}
	h.ehr.SetFaults(smarttest.Faults{})
	if _, err := h.eng.Ready(context.Background(), "b", res.Handle()); err != nil {
		t.Fatalf("the launch after a 403: %v", err)
	}
}
