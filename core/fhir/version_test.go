package fhir_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/fhirware/smart/core/fhir"
)

// WithVersion asks the server for a FHIR version in the major.minor form
// of FHIR's fhirVersion parameter, on every request the client makes
// (its own and Do's without an Accept), and leaves the client it was
// called on as it was. smarttest, a FHIR 4.0.1 server, answers 406 to
// another version.
func TestWithVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	const r4 = "application/fhir+json; fhirVersion=4.0"
	for _, tc := range []struct {
		version, accept string
	}{
		{"4.0.1", r4},
		{"4.0", r4},
		{"4.0.1-cibuild", r4},
		{"", "application/fhir+json"},
		{"R4", "application/fhir+json"},
		{"4", "application/fhir+json"},
		{"4.0.1.2", "application/fhir+json"},
		{"4.0; q=0", "application/fhir+json"},
		{"4.0\r\nX-Injected: 1", "application/fhir+json"},
	} {
		c := env.c.WithVersion(tc.version)
		var p fhirPatient
		if err := c.Read(ctx, "Patient/pat-1", &p); err != nil || p.ID != "pat-1" {
			t.Fatalf("%q: Read: %+v, %v", tc.version, p, err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, env.base+"/Patient/pat-2", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		seen := env.requests("")
		for _, r := range seen[len(seen)-2:] {
			if got := r.Header.Get("Accept"); got != tc.accept {
				t.Errorf("%q: %s sent Accept %q, want %q", tc.version, r.URL.Path, got, tc.accept)
			}
		}
	}
	// The client WithVersion was called on sends no version.
	if err := env.c.Read(ctx, "Patient/pat-1", new(fhirPatient)); err != nil {
		t.Fatal(err)
	}
	if seen := env.requests(""); seen[len(seen)-1].Header.Get("Accept") != "application/fhir+json" {
		t.Errorf("the original client sent Accept %q", seen[len(seen)-1].Header.Get("Accept"))
	}
	// Another version than the server's is refused by the server, as FHIR
	// asks (406).
	err := env.c.WithVersion("5.0.0").Read(ctx, "Patient/pat-1", new(fhirPatient))
	var fe *fhir.Error
	if !errors.As(err, &fe) || fe.StatusCode != http.StatusNotAcceptable {
		t.Fatalf("version 5.0.0: %v, want a 406", err)
	}
}
