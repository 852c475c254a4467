package fhir_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fhirware/smart/core/smarttest"
)

// An error's Resource names the request's resource type when it is one of
// FHIR R4, and is "" otherwise; its message shows no path segment but
// FHIR's own words, whatever the caller or the server put there ("call IT
// at 555-0100").
func TestErrorNamesOnlyFHIRWords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	for ref, want := range map[string]string{
		"Patient/no-such-patient":                             "Patient",
		"Observation/obs-1/_history/2":                        "Observation",
		"Observation/$lastn?code=1234-5":                      "Observation",
		"Patient/pat-1/$everything":                           "Patient",
		"MedicinalProductUndesirableEffect/x":                 "MedicinalProductUndesirableEffect",
		"VisionPrescription/x/_history":                       "VisionPrescription",
		"Observation/_search":                                 "Observation",
		"$export":                                             "",
		"ValueSet/$validate-code":                             "ValueSet",
		"Patient/no-such-patient/Observation/x":               "Patient",
		"Patient/no-such-patient/CallIT5550100":               "Patient",
		"$Your-EHR-session-is-locked.Call-IT-at-555-0100-now": "",
		"Patient/_Your_account_is_locked_call_555-0100":       "Patient",
		"Patient/$Call-555-0100":                              "Patient",
		"YourAccountIsLockedCallITAt5550100/x":                "",
		"Patient/x/_Call-555-0100/1":                          "Patient",
		"_Call555-0100":                                       "",
		"Resource/x":                                          "", // abstract, not a type a server serves
	} {
		var v json.RawMessage
		err := env.c.Read(ctx, ref, &v)
		if err == nil {
			t.Errorf("Read(%q) succeeded; the test wants an error answer", ref)
			continue
		}
		e := wantError(t, err, 404)
		if e.Resource != want {
			t.Errorf("Read(%q): Resource %q, want %q", ref, e.Resource, want)
		}
		if msg := err.Error(); strings.Contains(msg, "555") || strings.Contains(msg, "no-such-patient") || !strings.HasPrefix(msg, strings.TrimSpace("fhir: GET "+want)+": 404") {
			t.Errorf("Read(%q): message %q shows the caller's text, or not the request", ref, msg)
		}
	}
}

// A hostile EHR's next link, on its own origin and answered with an error,
// puts no text of the EHR's choosing in the message either.
func TestErrorOfANextLinkNamesOnlyFHIRWords(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.ehr.SetFaults(smarttest.Faults{NextLinkOrigin: env.base + "/$Your-EHR-session-is-locked.Call-IT-at-555-0100"})
	_, last := collect(env.c.Search(context.Background(), "Observation", pat1Observations))
	e := wantError(t, last, 404)
	if msg := last.Error(); strings.Contains(msg, "555") || e.Resource != "" || !strings.HasPrefix(msg, "fhir: GET: 404") {
		t.Errorf("message %q, Resource %q: want the next link's request without the EHR's text", msg, e.Resource)
	}
}
