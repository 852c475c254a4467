package smarttest_test

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/internal/testclock"
)

// searchPage is one searchset Bundle, read.
type searchPage struct {
	ids      []string         // the matches' ids, in order
	dates    []string         // their effectiveDateTime (or other date), in order
	outcomes []map[string]any // OperationOutcome entries (search mode "outcome")
	self     url.Values       // the self link's query
	next     string           // the next link, or ""
	total    float64
}

// search runs a search that must answer 200 and reads the Bundle.
func search(t *testing.T, s *smarttest.Server, tok, path string, hdr ...string) searchPage {
	t.Helper()
	resp, b := fhir(t, s, tok, "GET", path, nil, hdr...)
	if resp.StatusCode != 200 || b["resourceType"] != "Bundle" || b["type"] != "searchset" {
		t.Fatalf("GET %s: %d %v", path, resp.StatusCode, b)
	}
	p := searchPage{total: b["total"].(float64)}
	entries, _ := b["entry"].([]any)
	for _, e := range entries {
		e := e.(map[string]any)
		r := e["resource"].(map[string]any)
		switch mode := e["search"].(map[string]any)["mode"]; mode {
		case "match":
			p.ids = append(p.ids, str(r["id"]))
			p.dates = append(p.dates, str(r["effectiveDateTime"])+str(r["onsetDateTime"]))
		case "outcome":
			if r["resourceType"] != "OperationOutcome" {
				t.Fatalf("GET %s: outcome entry %v", path, r)
			}
			p.outcomes = append(p.outcomes, r)
		default:
			t.Fatalf("GET %s: search mode %v", path, mode)
		}
	}
	for _, l := range b["link"].([]any) {
		l := l.(map[string]any)
		u, err := url.Parse(str(l["url"]))
		if err != nil {
			t.Fatal(err)
		}
		switch l["relation"] {
		case "self":
			p.self = u.Query()
		case "next":
			p.next = u.String()
		}
	}
	return p
}

// searchAll follows next links from path and returns every match's id.
func searchAll(t *testing.T, s *smarttest.Server, tok, path string) (ids []string, pages int) {
	t.Helper()
	for next := path; next != ""; pages++ {
		if pages == 50 {
			t.Fatal("next links never end")
		}
		p := search(t, s, tok, next)
		ids = append(ids, p.ids...)
		next = p.next
	}
	return ids, pages
}

// create posts a resource and returns its id.
func create(t *testing.T, s *smarttest.Server, tok, typ string, r map[string]any) string {
	t.Helper()
	r["resourceType"] = typ
	resp, b := fhir(t, s, tok, "POST", "/"+typ, r)
	if resp.StatusCode != 201 {
		t.Fatalf("create %s: %d %v", typ, resp.StatusCode, b)
	}
	return str(b["id"])
}

// observation is an Observation of patient with a LOINC (or other) coding
// and a date; empty arguments leave the element out.
func observation(patient, system, code, date string) map[string]any {
	coding := map[string]any{"code": code}
	if system != "" {
		coding["system"] = system
	}
	o := map[string]any{
		"status":  "final",
		"code":    map[string]any{"coding": []any{coding}},
		"subject": map[string]any{"reference": "Patient/" + patient},
	}
	if date != "" {
		o["effectiveDateTime"] = date
	}
	return o
}

func ids(s ...string) []string { return s }

// obsIDs is obs-from … obs-to.
func obsIDs(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, "obs-"+strconv.Itoa(i))
	}
	return out
}

func TestSearchSortByDate(t *testing.T) {
	t.Parallel()
	s, tok := session(t, smarttest.Options{})
	// The sample observations of pat-1 were made in date order; these two
	// are not.
	newest := create(t, s, tok, "Observation", observation("pat-1", "http://loinc.org", "8867-4", "2025-01-05T08:00:00Z"))
	oldest := create(t, s, tok, "Observation", observation("pat-1", "http://loinc.org", "8867-4", "2023-02-01T08:00:00Z"))

	// The last five observations are the five newest.
	p := search(t, s, tok, "/Observation?patient=pat-1&_sort=-date&_count=5")
	if want := ids(newest, "obs-12", "obs-11", "obs-10", "obs-9"); !slices.Equal(p.ids, want) || p.total != 14 {
		t.Errorf("_sort=-date&_count=5: %v (total %v), want %v", p.ids, p.total, want)
	}
	if p.self.Get("_sort") != "-date" || p.self.Get("_count") != "5" || p.self.Get("patient") != "pat-1" {
		t.Errorf("self link %v", p.self)
	}

	all := search(t, s, tok, "/Observation?patient=pat-1&_sort=date&_count=50")
	if len(all.ids) != 14 || all.ids[0] != oldest || all.ids[1] != "obs-1" || all.ids[13] != newest {
		t.Errorf("_sort=date: %v", all.ids)
	}
	for i := 1; i < len(all.dates); i++ {
		if all.dates[i-1] >= all.dates[i] {
			t.Errorf("_sort=date: %s before %s (sample dates must differ)", all.dates[i-1], all.dates[i])
		}
	}
	desc := search(t, s, tok, "/Observation?patient=pat-1&_sort=-date&_count=50")
	reversed := slices.Clone(all.ids)
	slices.Reverse(reversed)
	if !slices.Equal(desc.ids, reversed) {
		t.Errorf("_sort=-date is not _sort=date reversed:\n%v\n%v", desc.ids, all.ids)
	}

	// Conditions sort by onset, encounters by period start, whatever the
	// order they were made in.
	for path, want := range map[string][]string{
		"/Condition?patient=pat-1&_sort=date":  {"cond-2", "cond-1"},
		"/Condition?patient=pat-1&_sort=-date": {"cond-1", "cond-2"},
		"/Encounter?_sort=-date":               {"enc-4", "enc-2", "enc-3", "enc-1"},
		"/Patient?_sort=-_id":                  {"pat-3", "pat-2", "pat-1"},
	} {
		if got := search(t, s, tok, path).ids; !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}

	// A resource without a date sorts last either way.
	undated := observation("pat-3", "http://loinc.org", "8867-4", "")
	undated["resourceType"], undated["id"] = "Observation", "obs-18"
	if resp, b := fhir(t, s, tok, "PUT", "/Observation/obs-18", undated); resp.StatusCode != 200 {
		t.Fatalf("update: %d %v", resp.StatusCode, b)
	}
	for sort, want := range map[string][]string{"date": {"obs-19", "obs-20", "obs-18"}, "-date": {"obs-20", "obs-19", "obs-18"}} {
		if got := search(t, s, tok, "/Observation?patient=pat-3&_sort="+sort).ids; !slices.Equal(got, want) {
			t.Errorf("_sort=%s: %v, want %v", sort, got, want)
		}
	}
}

func TestSearchSortByLastUpdated(t *testing.T) {
	t.Parallel()
	now := testclock.New()
	s, tok := session(t, smarttest.Options{Now: now.Now})
	now.Advance(time.Minute)
	obs5 := observation("pat-1", "http://loinc.org", "8310-5", "2024-03-01T09:34:00Z")
	obs5["resourceType"], obs5["id"] = "Observation", "obs-5"
	if resp, b := fhir(t, s, tok, "PUT", "/Observation/obs-5", obs5); resp.StatusCode != 200 {
		t.Fatalf("update: %d %v", resp.StatusCode, b)
	}
	// Newest change first, then by date: two keys.
	got := search(t, s, tok, "/Observation?patient=pat-1&_sort=-_lastUpdated,-date&_count=3").ids
	if want := ids("obs-5", "obs-12", "obs-11"); !slices.Equal(got, want) {
		t.Errorf("_sort=-_lastUpdated,-date: %v, want %v", got, want)
	}
	got = search(t, s, tok, "/Observation?patient=pat-1&_lastUpdated=gt"+now.Now().Add(-time.Second).UTC().Format(time.RFC3339)).ids
	if !slices.Equal(got, ids("obs-5")) {
		t.Errorf("_lastUpdated=gt…: %v, want obs-5", got)
	}
}

func TestSearchDate(t *testing.T) {
	t.Parallel()
	s, tok := session(t, smarttest.Options{})
	newest := create(t, s, tok, "Observation", observation("pat-1", "http://loinc.org", "8867-4", "2025-01-05T08:00:00Z"))
	oldest := create(t, s, tok, "Observation", observation("pat-1", "http://loinc.org", "8867-4", "2023-02-01T08:00:00Z"))
	pat1In2024 := obsIDs(1, 12)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"date=ge2024-01-01&date=lt2025", pat1In2024},
		{"date=2024", pat1In2024},
		{"date=2023,2025", ids(newest, oldest)},
		{"date=2024-06", obsIDs(7, 12)},
		{"date=2024-06-12", obsIDs(7, 11)},
		{"date=eq2024-06-12T14:01:00Z", ids("obs-8")},
		{"date=2024-06-12T14:01Z", ids("obs-8")},
		{"date=gt2024-06-12T14:01:00Z", append(obsIDs(9, 12), newest)},
		{"date=ge2024-06-12T14:01:00Z", append(obsIDs(8, 12), newest)},
		{"date=ge2024-06-12T16:00:00%2B02:00", append(obsIDs(7, 12), newest)}, // 14:00Z
		{"date=ge2024-06-12T16:00:00+02:00", append(obsIDs(7, 12), newest)},   // "+" read as a space
		{"date=ge2024-06-12T11:01:00-03:00", append(obsIDs(8, 12), newest)},   // 14:01Z
		{"date=sa2024-06-12T15:59Z", ids("obs-11", "obs-12", newest)},         // obs-11 at 16:00:00
		{"date=lt2024-03-01T09:33:00.000Z", ids("obs-1", "obs-2", "obs-3", oldest)},
		{"date=le2024-03", append(obsIDs(1, 6), oldest)},
		{"date=ne2024-03-01", append(obsIDs(7, 12), newest, oldest)},
		{"date=sa2024-06-12", ids("obs-12", newest)},
		{"date=eb2024-03-01", ids(oldest)},
		{"date=gt2024-03&date=lt2024-06-13", obsIDs(7, 11)},
	} {
		got := search(t, s, tok, "/Observation?patient=pat-1&"+tc.query+"&_count=50").ids
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.query, got, tc.want)
		}
	}

	// Condition's date is its onset, Encounter's its period; a period
	// without an end goes on.
	open := create(t, s, tok, "Encounter", map[string]any{
		"status": "in-progress", "subject": map[string]any{"reference": "Patient/pat-2"},
		"period": map[string]any{"start": "2024-12-30T10:00:00Z"},
	})
	for path, want := range map[string][]string{
		"/Condition?date=lt2010":       {"cond-2"},
		"/Condition?date=2015-02-03":   {"cond-3"},
		"/Encounter?date=2024-04":      {"enc-3"},
		"/Encounter?date=gt2030":       {"enc-4", open}, // in progress
		"/Encounter?date=2024-12-30":   nil,             // the period is longer than the day
		"/Encounter?date=sa2024-07-01": {"enc-4", open},
	} {
		if got := search(t, s, tok, path).ids; !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}

	for _, bad := range []string{"date=2024-13", "date=xx2024", "date=2024-06-12T14", "date=ge", "date=2024-06-12T25:00Z"} {
		resp, oo := fhir(t, s, tok, "GET", "/Observation?"+bad, nil)
		if resp.StatusCode != 400 || oo["resourceType"] != "OperationOutcome" {
			t.Errorf("%s: %d %v, want 400", bad, resp.StatusCode, oo)
		}
	}
}

func TestSearchTokens(t *testing.T) {
	t.Parallel()
	s, tok := session(t, smarttest.Options{})
	heartRates := ids("obs-1", "obs-7", "obs-11", "obs-12")
	noSystem := create(t, s, tok, "Observation", observation("pat-1", "", "8867-4", "2024-08-01T10:00:00Z"))
	comma := create(t, s, tok, "Observation", observation("pat-1", "http://example.org/codes", "a,b", "2024-08-02T10:00:00Z"))
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"code=http://loinc.org|8867-4", heartRates},
		{"code=8867-4", append(heartRates, noSystem)},
		{"code=|8867-4", ids(noSystem)},
		{"code=http://snomed.info/sct|8867-4", nil},
		{"code=8867-4,29463-7", ids("obs-1", "obs-2", "obs-7", "obs-8", "obs-11", "obs-12", noSystem)},
		{"code=8867-4&code=29463-7", nil}, // repeated: both must hold
		{"code=http://example.org/codes|", ids(comma)},
		{`code=a\,b`, ids(comma)},
		{"code=a", nil},
		{"category=vital-signs", ids("obs-1", "obs-2", "obs-3", "obs-4", "obs-5", "obs-7", "obs-8", "obs-9", "obs-11", "obs-12")},
		{"category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory", ids("obs-6", "obs-10")},
		{"category=laboratory&code=2339-0", ids("obs-10")},
	} {
		// PathEscape keeps = and & but escapes | , and \ as a client would.
		got := search(t, s, tok, "/Observation?patient=pat-1&"+url.PathEscape(tc.query)+"&_count=50").ids
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.query, got, tc.want)
		}
	}
	for path, want := range map[string][]string{
		"/Condition?code=http://snomed.info/sct|44054006": {"cond-3"},
		"/Condition?category=problem-list-item":           {"cond-1", "cond-2", "cond-3", "cond-4"},
		"/Observation?code=4548-4":                        {"obs-6", "obs-16"},
	} {
		if got := search(t, s, tok, path).ids; !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
}

func TestSearchPatientAndSubject(t *testing.T) {
	t.Parallel()
	s, tok := session(t, smarttest.Options{})
	want := obsIDs(1, 12)
	for _, q := range []string{
		"patient=pat-1", "patient=Patient/pat-1", "subject=Patient/pat-1", "subject=pat-1",
		"subject=" + url.QueryEscape(s.FHIRBaseURL()+"/Patient/pat-1"),
	} {
		if got := search(t, s, tok, "/Observation?_count=50&"+q).ids; !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}
	if got := search(t, s, tok, "/Observation?patient=pat-2,pat-3&_count=50").ids; !slices.Equal(got, obsIDs(13, 20)) {
		t.Errorf("patient=pat-2,pat-3: %v", got)
	}
	if got := search(t, s, tok, "/Observation?patient=pat-2&subject=pat-3").ids; got != nil {
		t.Errorf("patient=pat-2&subject=pat-3: %v, want none", got)
	}
	if got := search(t, s, tok, "/Patient?_id=pat-3,pat-1").ids; !slices.Equal(got, ids("pat-1", "pat-3")) {
		t.Errorf("_id=pat-3,pat-1: %v", got)
	}
}

func TestSearchUnsupportedParameters(t *testing.T) {
	t.Parallel()
	s, tok := session(t, smarttest.Options{})
	const query = "/Observation?patient=pat-1&_sort=-date,value&_count=5&foo=pat-2&_include=Observation:subject&code:text=rate&_elements=id&_format=json&_summary=data"
	for _, prefer := range []string{"", "handling=lenient", "return=minimal; handling=lenient"} {
		p := search(t, s, tok, query, "Prefer", prefer)
		if !slices.Equal(p.ids, ids("obs-12", "obs-11", "obs-10", "obs-9", "obs-8")) {
			t.Errorf("Prefer %q: %v, want the five newest of pat-1", prefer, p.ids)
		}
		if len(p.outcomes) != 1 {
			t.Fatalf("Prefer %q: %d outcome entries, want 1", prefer, len(p.outcomes))
		}
		var diags []string
		for _, is := range p.outcomes[0]["issue"].([]any) {
			is := is.(map[string]any)
			if is["severity"] != "warning" || is["code"] != "not-supported" {
				t.Errorf("issue %v", is)
			}
			diags = append(diags, str(is["diagnostics"]))
		}
		all := strings.Join(diags, "\n")
		for _, name := range []string{`"foo"`, `"_include"`, `"code:text"`, `_sort: the key "value"`} {
			if !strings.Contains(all, name) {
				t.Errorf("no warning names %s:\n%s", name, all)
			}
		}
		if len(diags) != 4 || strings.Contains(all, "pat-2") || strings.Contains(all, "_elements") || strings.Contains(all, "_format") {
			t.Errorf("warnings:\n%s", all)
		}
		// The self link names what was applied, nothing else.
		want := url.Values{"patient": {"pat-1"}, "_sort": {"-date"}, "_count": {"5"}}
		if p.self.Encode() != want.Encode() {
			t.Errorf("self link %v, want %v", p.self, want)
		}
		if u, _ := url.Parse(p.next); u.Query().Get("foo") != "" || !strings.Contains(p.next, "_sort=-date") {
			t.Errorf("next link %s", p.next)
		} else if next := search(t, s, tok, p.next); len(next.outcomes) != 0 || len(next.ids) != 5 {
			t.Errorf("next page: %d outcomes, ids %v", len(next.outcomes), next.ids)
		}
	}

	// Strict handling refuses the search.
	for _, prefer := range []string{"handling=strict", "respond-async, handling=\"strict\""} {
		resp, oo := fhir(t, s, tok, "GET", query, nil, "Prefer", prefer)
		issues, _ := oo["issue"].([]any)
		if resp.StatusCode != 400 || oo["resourceType"] != "OperationOutcome" || len(issues) != 4 {
			t.Fatalf("Prefer %q: %d %v", prefer, resp.StatusCode, oo)
		}
		for _, is := range issues {
			if is := is.(map[string]any); is["severity"] != "error" || is["code"] != "not-supported" {
				t.Errorf("strict issue %v", is)
			}
		}
	}
	// … but not a search it honours whole.
	if p := search(t, s, tok, "/Observation?patient=pat-1&date=2024-06&_elements=id", "Prefer", "handling=strict"); len(p.ids) != 6 || p.outcomes != nil {
		t.Errorf("strict, all honoured: %v %v", p.ids, p.outcomes)
	}

	// What a type lacks is unsupported for that type.
	for _, path := range []string{"/Patient?date=2024", "/Encounter?code=AMB", "/Patient?_sort=date", "/Observation?date=ap2024", "/Observation?_format=xml"} {
		if p := search(t, s, tok, path); len(p.outcomes) != 1 {
			t.Errorf("%s: no warning", path)
		}
		if resp, _ := fhir(t, s, tok, "GET", path, nil, "Prefer", "handling=strict"); resp.StatusCode != 400 {
			t.Errorf("%s strict: %d, want 400", path, resp.StatusCode)
		}
	}

	// A batch's searches follow the batch request's preference.
	batch := map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
		map[string]any{"request": map[string]any{"method": "GET", "url": "Observation?foo=1"}},
	}}
	_, b := fhir(t, s, tok, "POST", "", batch, "Prefer", "handling=strict")
	if st := b["entry"].([]any)[0].(map[string]any)["response"].(map[string]any)["status"]; st != "400 Bad Request" {
		t.Errorf("strict batch search: %v", st)
	}
}

func TestSearchPagingSorted(t *testing.T) {
	t.Parallel()
	s, tok := session(t, smarttest.Options{})
	for _, sort := range []string{"-date", "date", "_lastUpdated", "-_lastUpdated,_id", "_id"} {
		whole := search(t, s, tok, "/Observation?_count=100&_sort="+sort)
		paged, pages := searchAll(t, s, tok, "/Observation?_count=3&_sort="+sort)
		if len(whole.ids) != 20 || !slices.Equal(paged, whole.ids) || pages != 7 {
			t.Errorf("_sort=%s: %d pages %v, want %v", sort, pages, paged, whole.ids)
		}
		seen := map[string]bool{}
		for _, id := range paged {
			if seen[id] {
				t.Errorf("_sort=%s: %s twice", sort, id)
			}
			seen[id] = true
		}
	}
	// All sample resources were made at the same moment: ties keep the
	// order of creation.
	if got, _ := searchAll(t, s, tok, "/Observation?_count=7&_sort=-_lastUpdated"); !slices.Equal(got, obsIDs(1, 20)) {
		t.Errorf("_sort=-_lastUpdated: %v", got)
	}

	p := search(t, s, tok, "/Observation?patient=pat-1&_summary=count")
	if p.total != 12 || p.ids != nil || p.next != "" {
		t.Errorf("_summary=count: total %v, ids %v, next %q", p.total, p.ids, p.next)
	}
	for _, bad := range []string{"_count=-1", "_count=x", "_offset=-3", "_summary=some", "_sort=date,"} {
		if resp, _ := fhir(t, s, tok, "GET", "/Observation?"+bad, nil); resp.StatusCode != 400 {
			t.Errorf("%s: %d, want 400", bad, resp.StatusCode)
		}
	}
}

func TestCapabilityStatementSearchParams(t *testing.T) {
	t.Parallel()
	s, _ := session(t, smarttest.Options{})
	_, cs := fhir(t, s, "", "GET", "/metadata", nil)
	got := map[string][]string{}
	for _, r := range cs["rest"].([]any)[0].(map[string]any)["resource"].([]any) {
		r := r.(map[string]any)
		for _, sp := range r["searchParam"].([]any) {
			got[str(r["type"])] = append(got[str(r["type"])], str(sp.(map[string]any)["name"]))
		}
	}
	common := []string{"_id", "_lastUpdated", "patient", "subject"}
	for typ, want := range map[string][]string{
		"Observation": slices.Concat(common, ids("date", "category", "code")),
		"Condition":   slices.Concat(common, ids("date", "category", "code")),
		"Encounter":   slices.Concat(common, ids("date")),
		"Patient":     common,
	} {
		if !slices.Equal(got[typ], want) {
			t.Errorf("%s: searchParam %v, want %v", typ, got[typ], want)
		}
	}
}
