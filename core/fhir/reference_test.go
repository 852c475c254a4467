package fhir_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fhirware/smart/core/fhir"
)

func TestParseReference(t *testing.T) {
	t.Parallel()
	const base = "https://ehr.test/fhir"
	for _, tc := range []struct {
		in     string
		want   fhir.Reference
		ok     bool
		String string
	}{
		{"Practitioner/123", fhir.Reference{Type: "Practitioner", ID: "123"}, true, "Practitioner/123"},
		{"https://ehr.test/fhir/Practitioner/abc.1", fhir.Reference{Type: "Practitioner", ID: "abc.1"}, true, "Practitioner/abc.1"},
		{"https://ehr.test/fhir/Patient/p1/_history/3", fhir.Reference{Type: "Patient", ID: "p1"}, true, "Patient/p1"},
		{"https://other.test/r4/Person/9", fhir.Reference{Type: "Person", ID: "9", URL: "https://other.test/r4/Person/9"}, true, "https://other.test/r4/Person/9"},
		{"https://other.test/r4/Person/9/", fhir.Reference{Type: "Person", ID: "9", URL: "https://other.test/r4/Person/9"}, true, "https://other.test/r4/Person/9"},
		{"https://ehr.test/fhir2/Person/9", fhir.Reference{Type: "Person", ID: "9", URL: "https://ehr.test/fhir2/Person/9"}, true, "https://ehr.test/fhir2/Person/9"},
		{"Practitioner/123/_history/2", fhir.Reference{Type: "Practitioner", ID: "123"}, true, "Practitioner/123"},
		{"", fhir.Reference{}, false, ""},
		{"Practitioner", fhir.Reference{}, false, ""},
		{"practitioner/123", fhir.Reference{}, false, ""},
		{"Practitioner/a b", fhir.Reference{}, false, ""},
		{"Practitioner/" + strings.Repeat("x", 65), fhir.Reference{}, false, ""},
		{"a/Practitioner/1", fhir.Reference{}, false, ""},
		{"https:///Patient/1", fhir.Reference{}, false, ""},
		{"Patient/../../x", fhir.Reference{}, false, ""},
		{"Patient/..", fhir.Reference{}, false, ""},
		{"https://other.test/r4/Person/%2e%2e/Person/9", fhir.Reference{}, false, ""},
	} {
		got, ok := fhir.ParseReference(base, tc.in)
		if ok != tc.ok || got != tc.want || got.String() != tc.String || got.IsZero() == ok {
			t.Errorf("ParseReference(%q) = %+v (%q), %v; want %+v (%q), %v", tc.in, got, got.String(), ok, tc.want, tc.String, tc.ok)
		}
	}
	// Without a base every absolute reference is on another server.
	if r, ok := fhir.ParseReference("", "https://ehr.test/fhir/Patient/1"); !ok || r.URL != "https://ehr.test/fhir/Patient/1" {
		t.Errorf("ParseReference without a base = %+v, %v", r, ok)
	}
}

func TestReferenceJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		r    fhir.Reference
		json string
	}{
		{fhir.Reference{Type: "Practitioner", ID: "1"}, `{"type":"Practitioner","id":"1"}`},
		{fhir.Reference{Type: "Person", ID: "9", URL: "https://other.test/Person/9"}, `{"type":"Person","id":"9","url":"https://other.test/Person/9"}`},
		{fhir.Reference{}, `{}`},
	} {
		b, err := json.Marshal(tc.r)
		if err != nil || string(b) != tc.json {
			t.Errorf("Marshal(%+v) = %s, %v; want %s", tc.r, b, err, tc.json)
		}
		var back fhir.Reference
		if err := json.Unmarshal(b, &back); err != nil || back != tc.r {
			t.Errorf("Unmarshal(%s) = %+v, %v", b, back, err)
		}
	}
	if (fhir.Reference{}).String() != "" || !(fhir.Reference{}).IsZero() || (fhir.Reference{Type: "Patient"}).IsZero() {
		t.Error("the zero Reference")
	}
}

// No reference with a "." or ".." path segment is accepted, in any form a
// server or proxy would resolve: it would name another resource, or climb
// out of the FHIR base on its origin. An id with dots in it is an id.
func TestParseReferenceRefusesDotSegments(t *testing.T) {
	t.Parallel()
	const base = "https://ehr.test/fhir"
	for _, ref := range []string{
		"Patient/..", "Patient/.", "Patient/../_history/1", "https://ehr.test/fhir/Patient/..",
		"https://ehr.test/fhir/x/../Patient/1", "https://EHR.test/fhir/../admin/Patient/1",
		"https://other.test/r4/../Person/9", "https://other.test/r4/%2e%2e/Person/9",
		"https://other.test/r4\\..\\Person/9", "https://other.test/Person/..",
	} {
		if r, ok := fhir.ParseReference(base, ref); ok {
			t.Errorf("ParseReference(%q) = %+v, want refused", ref, r)
		}
	}
	if r, ok := fhir.ParseReference(base, "Patient/a..b"); !ok || r.ID != "a..b" {
		t.Errorf("ParseReference(Patient/a..b) = %+v, %v; an id with dots is an id", r, ok)
	}
}

// Whatever ParseReference accepts is a resource type and a FHIR id, and,
// when absolute, a URL without a dot segment; what it refuses is the zero
// Reference.
func FuzzParseReference(f *testing.F) {
	f.Add("https://ehr.test/fhir", "Practitioner/123")
	f.Add("https://ehr.test/fhir", "https://ehr.test/fhir/Patient/p-1/_history/2")
	f.Add("https://ehr.test/fhir/", "https://other.test/Person/9?x=1#y")
	f.Add("", "Patient/../../etc")
	f.Add("https://ehr.test/fhir", "https://other.test/r4/%2e%2e/Person/9")
	f.Add("https://ehr.test/fhir", "Patient/..")
	f.Fuzz(func(t *testing.T, base, ref string) {
		r, ok := fhir.ParseReference(base, ref)
		if !ok {
			if !r.IsZero() || r != (fhir.Reference{}) {
				t.Fatalf("refused reference returned %+v", r)
			}
			return
		}
		if again, ok := fhir.ParseReference("", r.Type+"/"+r.ID); !ok || again.Type != r.Type || again.ID != r.ID {
			t.Fatalf("accepted %q as %+v, whose Type/ID does not parse", ref, r)
		}
		if r.URL == "" {
			if r.String() != r.Type+"/"+r.ID {
				t.Fatalf("relative reference %q is not Type/ID", r.String())
			}
			return
		}
		u, err := url.Parse(r.URL)
		if err != nil {
			t.Fatalf("accepted %q with a URL that does not parse: %v", ref, err)
		}
		for _, seg := range strings.FieldsFunc(u.Path, func(c rune) bool { return c == '/' || c == '\\' }) {
			if seg == "." || seg == ".." {
				t.Fatalf("accepted %q, whose path has a dot segment", ref)
			}
		}
	})
}

// A reference the client refuses to send is an *Error matching
// ErrInvalidReference, and nothing reaches the server.
func TestInvalidReferenceIsSentNowhere(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	defer srv.Close()
	c, err := fhir.NewClient(srv.URL+"/fhir", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"Observation/..", "Observation/.", "Observation/%2e%2e", "//other.test/Patient/1", ""} {
		var v any
		err := c.Read(context.Background(), ref, &v)
		var fe *fhir.Error
		if !errors.As(err, &fe) || !errors.Is(err, fhir.ErrInvalidReference) {
			t.Errorf("Read(%q) = %v, want an *Error matching ErrInvalidReference", ref, err)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests reached the server", n)
	}
}
