package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// pat1Observations searches pat-1's 12 observations, 5 a page: 3 pages.
var pat1Observations = url.Values{"patient": {"pat-1"}, "_count": {"5"}}

func TestSearchPagesThroughBundles(t *testing.T) {
	t.Parallel()
	env := launchForFHIR(t, fhirSetup{})
	env.ehr.ResetCounts()
	var ids []string
	for raw, err := range env.rc.Search(context.Background(), "Observation", pat1Observations) {
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
	if n := env.ehr.Count(smarttest.EndpointFHIR); n != 3 {
		t.Errorf("pages fetched = %d, want 3", n)
	}
	pages := env.requests("/fhir/Observation")
	for i, p := range pages {
		if a := p.Header.Get("Authorization"); !strings.HasPrefix(a, "Bearer ") {
			t.Errorf("page %d went without the token", i+1)
		}
		if p.URL.Query().Get("patient") != "pat-1" {
			t.Errorf("page %d lost the search parameters: %s", i+1, p.URL.RawQuery)
		}
	}
}

func TestSearchTyped(t *testing.T) {
	t.Parallel()
	env := launchForFHIR(t, fhirSetup{})
	var got []string
	for o, err := range core.Search[fhirObservation](context.Background(), env.rc, "Observation", url.Values{"patient": {"pat-2"}, "_count": {"2"}}) {
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
	for _, err := range core.Search[wrongShape](context.Background(), env.rc, "Observation", pat1Observations) {
		n++
		if err == nil {
			t.Fatal("decoding a string into an int did not fail")
		}
		wantFHIRError(t, err, core.CodeFHIRRequestFailed, 0)
	}
	if n != 1 {
		t.Errorf("the iteration went on after a decoding error: %d yields", n)
	}
}

func TestSearchStopsWhenTheLoopBreaks(t *testing.T) {
	t.Parallel()
	env := launchForFHIR(t, fhirSetup{})
	env.ehr.ResetCounts()
	n := 0
	for _, err := range env.rc.Search(context.Background(), "Observation", pat1Observations) {
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

func TestSearchPageLimit(t *testing.T) {
	t.Parallel()
	env := launchForFHIR(t, fhirSetup{})
	env.ehr.ResetCounts()
	n := 0
	var last error
	for _, err := range env.rc.Search(context.Background(), "Observation", pat1Observations, core.MaxPages(2)) {
		if err != nil {
			last = err
			continue
		}
		n++
	}
	if n != 10 {
		t.Errorf("yielded %d resources from 2 pages, want 10", n)
	}
	if !errors.Is(last, core.ErrTooManyPages) || codeOf(last) != core.CodeFHIRRequestFailed {
		t.Errorf("after the limit: %v, want ErrTooManyPages", last)
	}
	if got := env.ehr.Count(smarttest.EndpointFHIR); got != 2 {
		t.Errorf("pages fetched = %d, want 2", got)
	}

	// The default is 100 pages: 12 observations one a page pass.
	n = 0
	for _, err := range env.rc.Search(context.Background(), "Observation", url.Values{"patient": {"pat-1"}, "_count": {"1"}}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 12 {
		t.Errorf("one a page: %d results, want 12", n)
	}
}

func TestSearchRefusesNextLinkToAnotherOrigin(t *testing.T) {
	t.Parallel()
	other := newHeaderRecorder(t)
	env := launchForFHIR(t, fhirSetup{})
	env.ehr.SetFaults(smarttest.Faults{NextLinkOrigin: other.URL})
	n := 0
	var last error
	for _, err := range env.rc.Search(context.Background(), "Observation", pat1Observations) {
		if err != nil {
			last = err
			continue
		}
		n++
	}
	if n != 5 {
		t.Errorf("yielded %d resources, want the first page's 5", n)
	}
	if !errors.Is(last, core.ErrForeignNextLink) {
		t.Fatalf("error = %v, want ErrForeignNextLink", last)
	}
	if !strings.Contains(last.Error(), other.Listener.Addr().String()) || strings.Contains(last.Error(), "pat-1") {
		t.Errorf("message %q should name the other origin, and not the search parameters", last)
	}
	for _, r := range other.requests() {
		t.Errorf("the other origin got %s %s (Authorization %q)", r.Method, r.URL, r.Header.Get("Authorization"))
	}
}

func TestSearchErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := launchForFHIR(t, fhirSetup{})

	collect := func(typ string, q url.Values) (int, error) {
		n := 0
		for _, err := range env.rc.Search(ctx, typ, q) {
			if err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	}

	if _, err := collect("../auth", nil); codeOf(err) != core.CodeInvalidRequest {
		t.Errorf("Search of type ../auth: %v, want invalid_request", err)
	}

	env.ehr.SetFaults(smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointFHIR: http.StatusBadRequest}})
	_, err := collect("Observation", pat1Observations)
	e := wantFHIRError(t, err, core.CodeFHIRRequestFailed, http.StatusBadRequest)
	if e.Outcome == nil || strings.Contains(err.Error(), "pat-1") {
		t.Errorf("error %v: want an outcome and no search parameters in the message", err)
	}

	// The second page fails: the first page's results came, then the error.
	env.ehr.SetFaults(smarttest.Faults{})
	var got int
	for _, err := range env.rc.Search(ctx, "Observation", pat1Observations) {
		if err != nil {
			wantFHIRError(t, err, core.CodeFHIRRequestFailed, http.StatusInternalServerError)
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
	for _, err := range env.rc.Search(ctx2, "Observation", pat1Observations) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Search with a cancelled context: %v", err)
		}
	}
}
