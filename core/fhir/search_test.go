package fhir_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fhirware/smart/core/fhir"
	"github.com/fhirware/smart/core/smarttest"
)

// pat1Observations searches pat-1's 12 observations, 5 a page: 3 pages.
var pat1Observations = url.Values{"patient": {"pat-1"}, "_count": {"5"}}

// collect runs a search to its end and returns the ids it yielded and its
// last error.
func collect(seq func(func(json.RawMessage, error) bool)) (ids []string, last error) {
	for raw, err := range seq {
		if err != nil {
			last = err
			continue
		}
		var r struct{ ID string }
		json.Unmarshal(raw, &r)
		ids = append(ids, r.ID)
	}
	return ids, last
}

func TestSearchPagesThroughBundles(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	var ids []string
	for raw, err := range env.c.Search(context.Background(), "Observation", pat1Observations) {
		if err != nil {
			t.Fatalf("Search: %v", err)
		}
		var o fhirObservation
		if err := json.Unmarshal(raw, &o); err != nil {
			t.Fatal(err)
		}
		if o.ResourceType != "Observation" || o.Subject.Reference != "Patient/pat-1" {
			t.Errorf("got %s %s of %s", o.ResourceType, o.ID, o.Subject.Reference)
		}
		ids = append(ids, o.ID)
	}
	if len(ids) != 12 || ids[0] != "obs-1" || ids[11] != "obs-12" {
		t.Errorf("Search yielded %v, want obs-1 … obs-12", ids)
	}
	pages := env.requests("/fhir/Observation")
	if len(pages) != 3 {
		t.Errorf("pages fetched = %d, want 3", len(pages))
	}
	for i, p := range pages {
		if a := p.Header.Get("Authorization"); a != "Bearer "+env.token {
			t.Errorf("page %d went without the token", i+1)
		}
		if p.URL.Query().Get("patient") != "pat-1" {
			t.Errorf("page %d lost the search parameters: %s", i+1, p.URL.RawQuery)
		}
	}
}

func TestSearchTyped(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	var got []string
	for o, err := range fhir.Search[fhirObservation](context.Background(), env.c, "Observation", url.Values{"patient": {"pat-2"}, "_count": {"2"}}) {
		if err != nil {
			t.Fatalf("Search[T]: %v", err)
		}
		got = append(got, o.ID)
	}
	if strings.Join(got, ",") != "obs-13,obs-14,obs-15,obs-16,obs-17" {
		t.Errorf("Search[T] yielded %v", got)
	}

	// A resource that does not decode into T ends the search with an error.
	type wrongShape struct {
		Status int `json:"status"` // a string in FHIR
	}
	n := 0
	for v, err := range fhir.Search[wrongShape](context.Background(), env.c, "Observation", pat1Observations) {
		n++
		e := wantError(t, err, http.StatusOK)
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) || e.Resource != "Observation" || v.Status != 0 {
			t.Errorf("Search[wrongShape] = %+v, %v; want the zero value and the decoding error", v, err)
		}
	}
	if n != 1 {
		t.Errorf("the iteration went on after a decoding error: %d yields", n)
	}
}

func TestSearchStopsWhenTheLoopBreaks(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	n := 0
	for _, err := range env.c.Search(context.Background(), "Observation", pat1Observations) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 6 {
			break
		}
	}
	if got := env.ehr.Count(smarttest.EndpointFHIR); got != 2 {
		t.Errorf("pages fetched = %d after breaking on the 6th result, want 2", got)
	}
}

// Limit ends a search after n resources, without an error, and fetches no
// page it does not need; it composes with MaxPages.
func TestSearchLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		params    url.Values
		opts      []fhir.SearchOption
		wantIDs   int
		wantPages int
		wantErr   error
	}{
		{"within the first page", pat1Observations, []fhir.SearchOption{fhir.Limit(3)}, 3, 1, nil},
		{"at the end of the first page", pat1Observations, []fhir.SearchOption{fhir.Limit(5)}, 5, 1, nil},
		{"on the second page", pat1Observations, []fhir.SearchOption{fhir.Limit(7)}, 7, 2, nil},
		{"beyond the result", pat1Observations, []fhir.SearchOption{fhir.Limit(100)}, 12, 3, nil},
		{"n < 1 keeps no limit", pat1Observations, []fhir.SearchOption{fhir.Limit(0)}, 12, 3, nil},
		{"the page limit first", url.Values{"patient": {"pat-1"}, "_count": {"2"}}, []fhir.SearchOption{fhir.Limit(5), fhir.MaxPages(2)}, 4, 2, fhir.ErrTooManyPages},
		{"the limit first", url.Values{"patient": {"pat-1"}, "_count": {"2"}}, []fhir.SearchOption{fhir.MaxPages(2), fhir.Limit(4)}, 4, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t)
			ids, err := collect(env.c.Search(ctx, "Observation", tc.params, tc.opts...))
			if len(ids) != tc.wantIDs || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("Search = %v, %v; want %d resources and error %v", ids, err, tc.wantIDs, tc.wantErr)
			}
			if len(ids) > 0 && ids[0] != "obs-1" {
				t.Errorf("Search began with %s, want obs-1", ids[0])
			}
			if got := env.ehr.Count(smarttest.EndpointFHIR); got != tc.wantPages {
				t.Errorf("pages fetched = %d, want %d", got, tc.wantPages)
			}
		})
	}
}

func TestSearchPageLimit(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ids, last := collect(env.c.Search(context.Background(), "Observation", pat1Observations, fhir.MaxPages(2)))
	if len(ids) != 10 {
		t.Errorf("yielded %d resources from 2 pages, want 10", len(ids))
	}
	wantError(t, last, 0)
	if !errors.Is(last, fhir.ErrTooManyPages) {
		t.Errorf("after the limit: %v, want ErrTooManyPages", last)
	}
	if got := env.ehr.Count(smarttest.EndpointFHIR); got != 2 {
		t.Errorf("pages fetched = %d, want 2", got)
	}

	// The default is 100 pages: 12 observations one a page pass.
	ids, last = collect(env.c.Search(context.Background(), "Observation", url.Values{"patient": {"pat-1"}, "_count": {"1"}}))
	if len(ids) != 12 || last != nil {
		t.Errorf("one a page: %d results, %v; want 12", len(ids), last)
	}
}

func TestSearchRefusesNextLinkToAnotherOrigin(t *testing.T) {
	t.Parallel()
	other, rec := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"resourceType":"Bundle","type":"searchset"}`)
	})
	env := newEnv(t)
	env.ehr.SetFaults(smarttest.Faults{NextLinkOrigin: strings.TrimSuffix(other.BaseURL(), "/fhir")})
	ids, last := collect(env.c.Search(context.Background(), "Observation", pat1Observations))
	if len(ids) != 5 {
		t.Errorf("yielded %d resources, want the first page's 5", len(ids))
	}
	wantError(t, last, http.StatusOK)
	if !errors.Is(last, fhir.ErrForeignNextLink) {
		t.Fatalf("error = %v, want ErrForeignNextLink", last)
	}
	u, _ := url.Parse(other.BaseURL())
	if !strings.Contains(last.Error(), u.Host) || strings.Contains(last.Error(), "pat-1") {
		t.Errorf("message %q should name the other origin, and not the search parameters", last)
	}
	for _, r := range rec.requests("") {
		t.Errorf("the other origin got %s %s (Authorization %q)", r.Method, r.URL, r.Header.Get("Authorization"))
	}
}

// A hostile server's Bundles: the client follows what it may, refuses the
// rest, and yields only what it was asked for.
func TestSearchHostileBundles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	page := func(next string, entries ...string) string {
		link := ""
		if next != "" {
			link = fmt.Sprintf(`"link":[{"relation":"self","url":"x"},{"relation":"next","url":%q}],`, next)
		}
		return `{"resourceType":"Bundle","type":"searchset",` + link + `"entry":[` + strings.Join(entries, ",") + `]}`
	}
	match := func(id string) string {
		return fmt.Sprintf(`{"resource":{"resourceType":"Observation","id":%q},"search":{"mode":"match"}}`, id)
	}
	include := `{"resource":{"resourceType":"Patient","id":"inc"},"search":{"mode":"include"}}`
	outcome := `{"resource":{"resourceType":"OperationOutcome","id":"oo"},"search":{"mode":"outcome"}}`
	noMode := `{"resource":{"resourceType":"Observation","id":"nomode"}}`
	empty := `{"fullUrl":"x","search":{"mode":"match"}}`

	for _, tc := range []struct {
		name    string
		pages   map[string]string // by the request's path and query
		opts    []fhir.SearchOption
		want    string
		wantErr string
	}{
		{"matches only by default", map[string]string{"/fhir/Observation?": page("", match("a"), include, outcome, noMode, empty)},
			nil, "a,nomode", ""},
		{"with included", map[string]string{"/fhir/Observation?": page("", match("a"), include, outcome)},
			[]fhir.SearchOption{fhir.WithIncluded()}, "a,inc", ""},
		{"included count towards the limit", map[string]string{"/fhir/Observation?": page("p2", include, match("a")), "/fhir/p2?": page("", match("b"))},
			[]fhir.SearchOption{fhir.WithIncluded(), fhir.Limit(2)}, "inc,a", ""},
		{"a relative next link", map[string]string{"/fhir/Observation?": page("Observation?page=2", match("a")), "/fhir/Observation?page=2": page("", match("b"))},
			nil, "a,b", ""},
		{"a next link that repeats a page", map[string]string{"/fhir/Observation?": page("Observation?page=2", match("a")), "/fhir/Observation?page=2": page("/fhir/Observation?page=2", match("b"))},
			nil, "a,b", "repeats an earlier page"},
		{"a next link with a dot segment", map[string]string{"/fhir/Observation?": page("/fhir/x/%2e%2e/Observation?page=2", match("a"))},
			nil, "a", `"." or ".."`},
		{"not a Bundle", map[string]string{"/fhir/Observation?": `{"resourceType":"Patient"}`},
			nil, "", `the answer is a "Patient", not a Bundle`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, rec := hostile(t, func(w http.ResponseWriter, r *http.Request) {
				body, ok := tc.pages[r.URL.Path+"?"+r.URL.RawQuery]
				if !ok {
					w.WriteHeader(http.StatusNotFound)
					return
				}
				fmt.Fprint(w, body)
			})
			ids, err := collect(c.Search(ctx, "Observation", nil, tc.opts...))
			if got := strings.Join(ids, ","); got != tc.want {
				t.Errorf("yielded %s, want %s", got, tc.want)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
			if tc.wantErr != "" {
				wantError(t, err, http.StatusOK)
			}
			for _, r := range rec.requests("") {
				if r.Header.Get("Accept") != "application/fhir+json" {
					t.Errorf("%s went without Accept", r.URL)
				}
			}
		})
	}
}

func TestSearchErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)

	for _, typ := range []string{"../auth", "patient", "Patient/1"} {
		_, err := collect(env.c.Search(ctx, typ, nil))
		wantError(t, err, 0)
	}
	if n := env.ehr.Count(smarttest.EndpointFHIR); n != 0 {
		t.Errorf("bad types made %d requests", n)
	}

	env.ehr.SetFaults(smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointFHIR: http.StatusBadRequest}})
	_, err := collect(env.c.Search(ctx, "Observation", pat1Observations))
	e := wantError(t, err, http.StatusBadRequest)
	if e.Outcome == nil || e.Resource != "Observation" || strings.Contains(err.Error(), "pat-1") {
		t.Errorf("error %v: want an outcome and no search parameters in the message", err)
	}

	// The second page fails: the first page's results came, then the error.
	env.ehr.SetFaults(smarttest.Faults{})
	var got int
	for _, err := range env.c.Search(ctx, "Observation", pat1Observations) {
		if err != nil {
			wantError(t, err, http.StatusInternalServerError)
			break
		}
		if got++; got == 5 {
			env.ehr.SetFaults(smarttest.Faults{FailTimes: map[smarttest.Endpoint]int{smarttest.EndpointFHIR: 1}})
		}
	}
	if got != 5 {
		t.Errorf("got %d results before the failing page, want 5", got)
	}

	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	n := 0
	for _, err := range env.c.Search(ctx2, "Observation", pat1Observations) {
		n++
		wantError(t, err, 0)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Search with a cancelled context: %v", err)
		}
	}
	if n != 1 {
		t.Errorf("Search with a cancelled context yielded %d times, want one error", n)
	}
}
