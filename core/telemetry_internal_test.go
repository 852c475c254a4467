package core

import (
	"net/url"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// quietTelemetry is the telemetry of an Engine a test builds by hand.
func quietTelemetry() *telemetry {
	return newTelemetry(tracenoop.NewTracerProvider(), metricnoop.NewMeterProvider())
}

// A FHIR request's URL template keeps the base path, resource types,
// operations and FHIR keywords, and replaces every id; on another origin
// the base path is replaced too, unless a segment has a resource type's
// shape.
func TestFHIRTemplate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		base, url  string
		same       bool
		want, kind string
	}{
		{"/fhir", "https://ehr/fhir/Patient/pat-1", true, "/fhir/Patient/{id}", "Patient"},
		{"/fhir/", "https://ehr/fhir/Patient/pat-1?name=x", true, "/fhir/Patient/{id}", "Patient"},
		{"/fhir", "https://ehr/fhir/Observation?patient=pat-1", true, "/fhir/Observation", "Observation"},
		{"/fhir", "https://ehr/fhir/Patient/pat-1/_history/3", true, "/fhir/Patient/{id}/_history/{vid}", "Patient"},
		{"/fhir", "https://ehr/fhir/Patient/pat-1/$everything", true, "/fhir/Patient/{id}/$everything", "Patient"},
		{"/fhir", "https://ehr/fhir/Patient/pat-1/Observation", true, "/fhir/Patient/{id}/Observation", "Patient"},
		{"/fhir", "https://ehr/fhir/Observation/_search", true, "/fhir/Observation/_search", "Observation"},
		{"/fhir", "https://ehr/fhir/metadata", true, "/fhir/metadata", ""},
		{"/fhir", "https://ehr/fhir", true, "/fhir", ""},
		{"/fhir", "https://ehr/fhir/", true, "/fhir", ""},
		{"", "https://ehr/", true, "/", ""},
		{"/fhir", "https://ehr/fhirx/Patient/1", true, "/{id}/Patient/{id}", "Patient"},
		{"/fhir", "https://other/r4/Practitioner/prac-1", false, "/{id}/Practitioner/{id}", "Practitioner"},
		{"/fhir", "https://other/fhir/Patient/pat-1", false, "/{id}/Patient/{id}", "Patient"},
		{"/fhir", "https://ehr/fhir/Patient/Smith", true, "/fhir/Patient/{id}", "Patient"},
		{"/fhir", "https://ehr/fhir/pat-1", true, "/fhir/{id}", ""},
		{"/fhir", "https://ehr/fhir/JaneDoe", true, "/fhir/{id}", ""},
		{"/fhir", "https://ehr/fhir/$export-poll-status/JobToken", true, "/fhir/$export-poll-status/{id}", ""},
		{"/fhir", "https://other/Users/JaneDoe/Practitioner/1", false, "/{id}/{id}/Practitioner/{id}", "Practitioner"},
		{"/fhir", "https://ehr/fhir/Patient/a%2Fb", true, "/fhir/Patient/{id}", "Patient"},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		got, kind := fhirTemplate(tc.base, u, tc.same)
		if got != tc.want || kind != tc.kind {
			t.Errorf("fhirTemplate(%q, %s, %v) = %q, %q; want %q, %q", tc.base, tc.url, tc.same, got, kind, tc.want, tc.kind)
		}
	}
}

// Text in an operation's place that is not an operation name is replaced.
func TestFHIRTemplateOperations(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"/fhir/Patient/$everything":          "/fhir/Patient/$everything",
		"/fhir/$member-match":                "/fhir/$member-match",
		"/fhir/Patient/$Call-IT-at-555-0100": "/fhir/Patient/{id}",
		"/fhir/Patient/$call-555":            "/fhir/Patient/{id}",
	} {
		got, _ := fhirTemplate("/fhir", &url.URL{Path: path}, true)
		if got != want {
			t.Errorf("fhirTemplate(%s) = %s, want %s", path, got, want)
		}
	}
}
