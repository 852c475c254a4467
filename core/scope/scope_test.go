package scope_test

import (
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/fhirware/smart/core/scope"
)

const all = scope.Create | scope.Read | scope.Update | scope.Delete | scope.Search

type allowsCase struct {
	name    string
	granted string
	ctx     string
	typ     string
	i       scope.Interaction
	want    bool
}

func (tc allowsCase) run(t *testing.T) {
	t.Parallel()
	if got := scope.Parse(tc.granted).Allows(tc.ctx, tc.typ, tc.i); got != tc.want {
		t.Errorf("Parse(%q).Allows(%q, %q, %s) = %v, want %v", tc.granted, tc.ctx, tc.typ, tc.i, got, tc.want)
	}
}

// TestVersionEquivalence: version 1's read, write and * grant what version
// 2's rs, cud and cruds grant, interaction by interaction.
func TestVersionEquivalence(t *testing.T) {
	t.Parallel()
	pairs := []struct{ v1, v2 string }{
		{"patient/Observation.read", "patient/Observation.rs"},
		{"patient/Observation.write", "patient/Observation.cud"},
		{"patient/Observation.*", "patient/Observation.cruds"},
		{"user/*.read", "user/*.rs"},
		{"system/*.*", "system/*.cruds"},
	}
	ints := []scope.Interaction{scope.Create, scope.Read, scope.Update, scope.Delete, scope.Search,
		scope.Read | scope.Search, scope.Create | scope.Update | scope.Delete, all}
	for _, p := range pairs {
		v1, v2 := scope.Parse(p.v1), scope.Parse(p.v2)
		for _, ctx := range []string{"patient", "user", "system"} {
			for _, i := range ints {
				if a, b := v1.Allows(ctx, "Observation", i), v2.Allows(ctx, "Observation", i); a != b {
					t.Errorf("%s allows %s %s on Observation: %v; %s: %v", p.v1, ctx, i, a, p.v2, b)
				}
			}
		}
		if m := v2.Missing(v1); m != nil {
			t.Errorf("granted %s does not cover requested %s: missing %q", p.v2, p.v1, m)
		}
		if m := v1.Missing(v2); m != nil {
			t.Errorf("granted %s does not cover requested %s: missing %q", p.v1, p.v2, m)
		}
	}
}

func TestAllows(t *testing.T) {
	t.Parallel()
	for _, tc := range []allowsCase{
		{"v1 read reads", "patient/Observation.read", "patient", "Observation", scope.Read, true},
		{"v1 read searches", "patient/Observation.read", "patient", "Observation", scope.Search, true},
		{"v1 read does not write", "patient/Observation.read", "patient", "Observation", scope.Create, false},
		{"v2 r does not search", "patient/Observation.r", "patient", "Observation", scope.Read | scope.Search, false},
		{"v2 letters combine across scopes", "patient/Observation.r patient/Observation.s", "patient", "Observation", scope.Read | scope.Search, true},
		{"other type", "patient/Observation.rs", "patient", "Patient", scope.Read, false},
		{"other context", "patient/Observation.rs", "user", "Observation", scope.Read, false},
		{"wildcard type reads", "patient/*.read", "patient", "Observation", scope.Read, true},
		{"wildcard type does not write", "patient/*.read", "patient", "Observation", scope.Update, false},
		{"user cruds allows everything", "user/*.cruds", "user", "MedicationRequest", all, true},
		{"user cruds is not patient", "user/*.cruds", "patient", "MedicationRequest", scope.Read, false},
		{"v1 star star", "system/*.*", "system", "Patient", all, true},
		{"no interaction is never allowed", "user/*.cruds", "user", "Patient", 0, false},
		{"letters out of order are not a scope", "patient/Observation.sr", "patient", "Observation", scope.Read, false},
		{"unknown context", "org/Observation.rs", "org", "Observation", scope.Read, false},
		{"v1 with a query is not a scope", "patient/Observation.read?category=laboratory", "patient", "Observation", scope.Read, false},
		{"query is not the whole type", "patient/Observation.rs?category=laboratory", "patient", "Observation", scope.Read, false},
		{"query beside an unrestricted scope", "patient/Observation.rs?category=laboratory patient/Observation.rs", "patient", "Observation", scope.Read, true},
		{"identity tokens grant no resource", "openid fhirUser launch/patient offline_access", "patient", "Patient", scope.Read, false},
	} {
		t.Run(tc.name, tc.run)
	}
}

// TestRestrictions: a scope with a query keeps it, and is found only for
// the interactions it has.
func TestRestrictions(t *testing.T) {
	t.Parallel()
	s := scope.Parse("patient/Observation.rs?category=laboratory patient/*.s?_security=normal patient/Patient.rs")
	got := s.Restrictions("patient", "Observation", scope.Search)
	want := []url.Values{{"category": {"laboratory"}}, {"_security": {"normal"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Restrictions(patient, Observation, s) = %v, want %v", got, want)
	}
	got = s.Restrictions("patient", "Observation", scope.Read)
	if want := []url.Values{{"category": {"laboratory"}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Restrictions(patient, Observation, r) = %v, want %v", got, want)
	}
	if got := s.Restrictions("patient", "Patient", scope.Read); got != nil {
		t.Errorf("Restrictions(patient, Patient, r) = %v, want none: Patient is granted whole", got)
	}
	if got := s.Restrictions("user", "Observation", scope.Read); got != nil {
		t.Errorf("Restrictions(user, Observation, r) = %v, want none", got)
	}
	got = s.Restrictions("patient", "Observation", scope.Search)
	got[0].Set("category", "vital-signs")
	if again := s.Restrictions("patient", "Observation", scope.Search); again[0].Get("category") != "laboratory" {
		t.Errorf("changing a returned query changed the Set: %v", again[0])
	}
}

type missingCase struct {
	name      string
	granted   string
	requested string
	want      []string
}

func (tc missingCase) run(t *testing.T) {
	t.Parallel()
	got := scope.Parse(tc.granted).Missing(scope.Parse(tc.requested))
	if !reflect.DeepEqual(got, tc.want) {
		t.Errorf("granted %q, requested %q: Missing = %q, want %q", tc.granted, tc.requested, got, tc.want)
	}
}

func TestMissing(t *testing.T) {
	t.Parallel()
	for _, tc := range []missingCase{
		{"all granted", "launch openid fhirUser patient/*.read offline_access", "launch openid fhirUser patient/*.read offline_access", nil},
		{"v2 grant covers v1 request", "patient/*.rs", "patient/*.read", nil},
		{"wildcard grant covers a type", "patient/*.rs", "patient/Observation.rs", nil},
		{"downgraded to one type", "openid patient/Patient.read", "launch openid fhirUser patient/*.read offline_access",
			[]string{"launch", "fhirUser", "patient/*.read", "offline_access"}},
		{"r only for rs", "patient/Observation.r", "patient/Observation.rs", []string{"patient/Observation.rs"}},
		{"letters from two grants", "patient/Observation.r patient/*.s", "patient/Observation.rs", nil},
		{"restricted grant is narrower", "patient/Observation.rs?category=laboratory", "patient/Observation.rs", []string{"patient/Observation.rs"}},
		{"same restriction", "patient/Observation.rs?category=laboratory", "patient/Observation.rs?category=laboratory", nil},
		{"unrestricted grant covers a restricted request", "patient/Observation.rs", "patient/Observation.rs?category=laboratory", nil},
		{"other restriction", "patient/Observation.rs?category=vital-signs", "patient/Observation.rs?category=laboratory",
			[]string{"patient/Observation.rs?category=laboratory"}},
		{"user is not patient", "user/*.cruds", "patient/Observation.read", []string{"patient/Observation.read"}},
		{"context token exact", "launch", "launch/patient", []string{"launch/patient"}},
		{"nothing requested", "openid", "", nil},
	} {
		t.Run(tc.name, tc.run)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	s := scope.Parse("  openid  fhirUser openid\tlaunch/patient patient/Observation.rs?category=laboratory ")
	if got, want := s.String(), "openid fhirUser launch/patient patient/Observation.rs?category=laboratory"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for _, tok := range []string{"openid", "fhirUser", "launch/patient", "patient/Observation.rs?category=laboratory"} {
		if !s.Has(tok) {
			t.Errorf("Has(%q) = false", tok)
		}
	}
	if s.Has("patient/Observation.rs") || s.Has("launch") {
		t.Error("Has matched a token that is not in the scope")
	}
	var zero scope.Set
	if zero.String() != "" || zero.Has("openid") || zero.Allows("user", "Patient", scope.Read) || zero.Missing(zero) != nil {
		t.Error("the zero Set is not the empty scope")
	}
	if got := (scope.Read | scope.Search | scope.Create).String(); got != "crs" {
		t.Errorf("Interaction.String() = %q, want crs", got)
	}
}

// Duplicates are dropped however many tokens the scope has: past the first
// few, Parse finds them with a map, so that an EHR's scope of many tokens
// costs linear time (BenchmarkParseManyTokens).
func TestParseDropsDuplicatesOfLongScopes(t *testing.T) {
	var toks, want []string
	for i := range 100 {
		tok := "patient/T" + strconv.Itoa(i) + ".rs"
		toks = append(toks, tok, tok)
		want = append(want, tok)
		if i%10 == 0 {
			toks = append(toks, "patient/T0.rs") // a duplicate of the first, again
		}
	}
	got := scope.Parse(strings.Join(toks, " ")).Tokens()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse kept %d tokens, want the %d distinct ones in order", len(got), len(want))
	}
}

// BenchmarkParseManyTokens parses a scope of 64 KiB of distinct tokens,
// the most a token response may grant.
func BenchmarkParseManyTokens(b *testing.B) {
	var sb strings.Builder
	for i := 0; sb.Len() < 64<<10; i++ {
		sb.WriteString("patient/T" + strconv.Itoa(i) + ".rs ")
	}
	s := sb.String()
	for b.Loop() {
		scope.Parse(s)
	}
}
