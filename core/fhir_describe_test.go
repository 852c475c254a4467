package core_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// A FHIR error's Description, which pages show, names the request with
// FHIR's own words only: a resource type of R4, _history or _search, a
// standard operation. Any other path segment may be text the caller or an
// EHR chose ("call IT at 555-0100"), and becomes "…".
func TestDescriptionNamesOnlyFHIRWords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	rc := h.readyFor(smarttest.LaunchContext{Patient: "pat-1"})
	for ref, want := range map[string]string{
		// FHIR's own words are kept, so a developer sees what failed.
		"Patient/no-such-patient":               "GET Patient/…",
		"Observation/obs-1/_history/2":          "GET Observation/…/_history/…",
		"Observation/$lastn?code=1234-5":        "GET Observation/$lastn",
		"Patient/pat-1/$everything":             "GET Patient/…/$everything",
		"MedicinalProductUndesirableEffect/x":   "GET MedicinalProductUndesirableEffect/…",
		"VisionPrescription/x/_history":         "GET VisionPrescription/…/_history",
		"Observation/_search":                   "GET Observation/_search",
		"$export":                               "GET $export",
		"ValueSet/$validate-code":               "GET ValueSet/$validate-code",
		"Patient/no-such-patient/Observation/x": "GET Patient/…/Observation/…",
		// Anything else is the caller's or the EHR's text.
		"Patient/no-such-patient/CallIT5550100":               "GET Patient/…/…",
		"$Your-EHR-session-is-locked.Call-IT-at-555-0100-now": "GET …",
		"Patient/_Your_account_is_locked_call_555-0100":       "GET Patient/…",
		"Patient/$Call-555-0100":                              "GET Patient/…",
		"Patient/pat-1/$EVERYTHING":                           "GET Patient/…/…",
		"YourAccountIsLockedCallITAt5550100/x":                "GET …/…",
		"Patient/x/_history/1/_history":                       "GET Patient/…/_history/…/…",
		"Patient/x/_Call-555-0100/1":                          "GET Patient/…/…/…",
		"_Call555-0100":                                       "GET …",
		"Resource/x":                                          "GET …/…", // abstract, not a type a server serves
	} {
		var v json.RawMessage
		err := rc.Read(ctx, ref, &v)
		if err == nil {
			t.Errorf("Read(%q) succeeded; the test wants an error answer", ref)
			continue
		}
		desc := description(t, err)
		got, _, ok := strings.Cut(desc, " answered ")
		if !ok {
			got, _, _ = strings.Cut(desc, " failed")
		}
		if got != want {
			t.Errorf("Read(%q): Description %q, want %q and the status", ref, desc, want)
		}
		if strings.Contains(desc, "555") {
			t.Errorf("Read(%q): Description %q shows the caller's text", ref, desc)
		}
		if code := codeOf(err); code == core.CodeInvalidRequest {
			t.Errorf("Read(%q) refused before any request (%v); the test wants the server's answer", ref, err)
		}
	}
}

// A hostile EHR's next link, on its own origin and answered with an error,
// puts no text of the EHR's choosing in the Description either.
func TestDescriptionOfANextLinkNamesOnlyFHIRWords(t *testing.T) {
	t.Parallel()
	env := launchForFHIR(t, fhirSetup{})
	env.ehr.SetFaults(smarttest.Faults{NextLinkOrigin: strings.TrimSuffix(env.base, "/fhir") + "/fhir/$Your-EHR-session-is-locked.Call-IT-at-555-0100"})
	var last error
	for _, err := range env.rc.Search(context.Background(), "Observation", pat1Observations) {
		if err != nil {
			last = err
		}
	}
	if last == nil {
		t.Fatal("the search followed the next link without an error")
	}
	if desc := description(t, last); strings.Contains(desc, "555") || !strings.HasPrefix(desc, "GET …/") {
		t.Errorf("Description %q: want the next link's path without the EHR's text", desc)
	}
}
