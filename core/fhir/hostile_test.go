package fhir_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fhirware/smart/core/fhir"
)

// emptyObjects is a JSON array of n empty objects: three bytes each, and a
// struct each once decoded.
func emptyObjects(n int) string {
	return "[" + strings.TrimSuffix(strings.Repeat("{},", n), ",") + "]"
}

// An OperationOutcome too large to explain a failure (each "{}" an issue)
// is left undecoded: the error keeps its status, and the client does not
// spend memory the answer's size does not warrant.
func TestLargeOutcomeIsNotDecoded(t *testing.T) {
	t.Parallel()
	body := `{"resourceType":"OperationOutcome","issue":` + emptyObjects(100_000) + `}`
	c, _ := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, body)
	})
	var v any
	err := c.Read(context.Background(), "Patient/1", &v)
	var fe *fhir.Error
	if !errors.As(err, &fe) || fe.StatusCode != http.StatusInternalServerError || fe.Outcome != nil {
		t.Fatalf("Read = %v; want an *Error with status 500 and no Outcome", err)
	}
}

// A Bundle page with more entries than any server pages (each "{}" an
// entry) ends the search with an error instead of decoding them all; a
// batch answer likewise.
func TestBundleWithTooManyEntries(t *testing.T) {
	t.Parallel()
	c, _ := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		typ := "searchset"
		if r.Method == http.MethodPost {
			typ = "batch-response"
		}
		fmt.Fprintf(w, `{"resourceType":"Bundle","type":%q,"entry":%s}`, typ, emptyObjects(200_000))
	})
	var n int
	var err error
	for _, e := range c.Search(context.Background(), "Observation", nil) {
		if e != nil {
			err = e
			break
		}
		n++
	}
	if err == nil || !strings.Contains(err.Error(), "more than 10000 entries") || n != 0 {
		t.Errorf("search over 200,000 entries: %d yielded, %v; want none and an error naming the bound", n, err)
	}
	_, err = c.Batch(context.Background(), []fhir.BundleEntry{{Method: "GET", URL: "Patient/1"}})
	if err == nil || !strings.Contains(err.Error(), "more than 10000 entries") {
		t.Errorf("batch answered with 200,000 entries: %v; want an error naming the bound", err)
	}
}

// A search whose next link is opaque, and whose page 2 fails with a
// message echoing the first request's parameters, gives an error that does
// not repeat them: they may name a patient.
func TestSecondPageErrorDoesNotEchoTheFirstQuery(t *testing.T) {
	t.Parallel()
	var base string
	c, _ := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("_getpages") == "" {
			fmt.Fprintf(w, `{"resourceType":"Bundle","type":"searchset","link":[{"relation":"next","url":%q}],"entry":[{"resource":{"resourceType":"Observation","id":"o1"}}]}`,
				base+"/fhir?_getpages=abc")
			return
		}
		w.WriteHeader(http.StatusGone)
		fmt.Fprint(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"expired","diagnostics":"search for patient=pat-secret-77 expired"}]}`)
	})
	u, _ := url.Parse(c.BaseURL())
	base = u.Scheme + "://" + u.Host
	var err error
	for _, e := range c.Search(context.Background(), "Observation", url.Values{"patient": {"pat-secret-77"}}) {
		if e != nil {
			err = e
		}
	}
	if err == nil || strings.Contains(err.Error(), "pat-secret-77") {
		t.Errorf("page 2's error = %v; want one without the first request's patient", err)
	}
}

// A redirect whose Location does not parse is an error that does not
// quote it.
func TestMalformedRedirectIsNotQuoted(t *testing.T) {
	t.Parallel()
	c, _ := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Location"] = []string{"/fhir/Patient/Jane%zzDoe-ssn-123-45-6789"}
		w.WriteHeader(http.StatusFound)
	})
	var v any
	err := c.Read(context.Background(), "Patient/1", &v)
	if err == nil || strings.Contains(err.Error(), "6789") || strings.Contains(err.Error(), "Jane") {
		t.Errorf("Read through a malformed redirect = %v; want an error without the Location", err)
	}
}
