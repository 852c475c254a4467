package core_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/fhirware/smart/core"
)

func TestParseReference(t *testing.T) {
	t.Parallel()
	const base = "https://ehr.test/fhir"
	for _, tc := range []struct {
		in   string
		want core.Reference
		ok   bool
	}{
		{"Practitioner/123", core.Reference{Type: "Practitioner", ID: "123", Reference: "Practitioner/123"}, true},
		{"https://ehr.test/fhir/Practitioner/abc.1", core.Reference{Type: "Practitioner", ID: "abc.1", Reference: "Practitioner/abc.1"}, true},
		{"https://ehr.test/fhir/Patient/p1/_history/3", core.Reference{Type: "Patient", ID: "p1", Reference: "Patient/p1"}, true},
		{"https://other.test/r4/Person/9", core.Reference{Type: "Person", ID: "9", Reference: "https://other.test/r4/Person/9"}, true},
		{"Practitioner/123/_history/2", core.Reference{Type: "Practitioner", ID: "123", Reference: "Practitioner/123"}, true},
		{"", core.Reference{}, false},
		{"Practitioner", core.Reference{}, false},
		{"practitioner/123", core.Reference{}, false},
		{"Practitioner/a b", core.Reference{}, false},
		{"Practitioner/" + strings.Repeat("x", 65), core.Reference{}, false},
		{"a/Practitioner/1", core.Reference{}, false},
		{"https:///Patient/1", core.Reference{}, false},
		{"Patient/../../x", core.Reference{}, false},
	} {
		got, ok := core.ParseReference(base, tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseReference(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	s := core.Secret("eyJhbGciOi.secret.token")
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("x", "token", s)
	out := fmt.Sprintf("%v %s %+v %#v", s, s, struct{ T core.Secret }{s}, s) + b.String()
	if strings.Contains(out, "secret") {
		t.Fatalf("a Secret printed its value: %s", out)
	}
	if core.Secret("").String() != "" {
		t.Error("empty Secret should print empty")
	}
}

func TestLaunchContextHasScope(t *testing.T) {
	t.Parallel()
	lc := core.LaunchContext{Scope: "launch openid patient/*.read"}
	if !lc.HasScope("openid") || lc.HasScope("patient") || lc.HasScope("offline_access") {
		t.Error("HasScope")
	}
}
