package fhir_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fhirware/smart/core/fhir"
	"github.com/fhirware/smart/core/smarttest"
)

func TestDo(t *testing.T) {
	t.Parallel()
	env := newEnv(t)

	// Accept is set on a copy when the caller set none; req is left as it
	// was.
	req, _ := http.NewRequest(http.MethodGet, env.base+"/Patient/pat-1", nil)
	resp, err := env.c.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("Do = %v, %v", resp, err)
	}
	resp.Body.Close()
	if len(req.Header) != 0 {
		t.Errorf("Do changed the caller's request: %v", req.Header)
	}
	// The caller's own Accept goes as it is, and error statuses are
	// answers, not errors.
	req, _ = http.NewRequest(http.MethodGet, env.base+"/Patient/nobody", nil)
	req.Header.Set("Accept", "application/json")
	resp, err = env.c.Do(req)
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("Do of a missing patient = %v, %v; want the 404 answer", resp, err)
	}
	resp.Body.Close()
	seen := env.requests("")
	if len(seen) != 2 || seen[0].Header.Get("Accept") != "application/fhir+json" || seen[1].Header.Get("Accept") != "application/json" {
		t.Errorf("Accept headers sent: %v", seen)
	}
	if seen[0].Header.Get("Authorization") != "Bearer "+env.token {
		t.Error("Do did not go through the HTTP client's Transport")
	}
}

// Do is bounded by the request's context, as x/oauth2's Transport and any
// *http.Client are; there is no other.
func TestDoHonoursRequestContext(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, env.base+"/Patient/secret-id-123?name=Shaw", nil)
	resp, err := env.c.Do(req)
	if resp != nil {
		resp.Body.Close()
	}
	e := wantError(t, err, 0)
	if !errors.Is(err, context.Canceled) || e.Method != "GET" || e.Resource != "Patient" {
		t.Errorf("Do with a cancelled context: %+v, want GET Patient wrapping context.Canceled", e)
	}
	if msg := err.Error(); strings.Contains(msg, "secret-id-123") || strings.Contains(msg, "Shaw") {
		t.Errorf("message %q holds the URL's id or query", msg)
	}
	if n := env.ehr.Count(smarttest.EndpointFHIR); n != 0 {
		t.Errorf("the server saw %d requests", n)
	}
}

// errLaunchOver stands for an error a caller's Transport returns (core's
// says a launch's tokens ran out), which callers test with errors.Is.
var errLaunchOver = errors.New("the launch's tokens ran out")

type refusingTransport struct{}

func (refusingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("refused: %w", errLaunchOver)
}

// A Transport's error reaches the caller through the *Error, and the
// *url.Error net/http wraps it in, whose message holds the whole URL, does
// not.
func TestTransportErrorKeepsItsCauseAndNotTheURL(t *testing.T) {
	t.Parallel()
	c, err := fhir.NewClient("https://ehr.test/fhir", &http.Client{Transport: refusingTransport{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var v any
	req, _ := http.NewRequest(http.MethodGet, "https://ehr.test/fhir/Observation?patient=secret-id-123", nil)
	errs := map[string]error{
		"Read":   c.Read(ctx, "Patient/secret-id-123", &v),
		"Do":     second(c.Do(req)),
		"Update": second(c.Update(ctx, "Patient/secret-id-123", map[string]any{"resourceType": "Patient"})),
		"Batch":  second(c.Batch(ctx, []fhir.BundleEntry{{Method: "GET", URL: "Patient/secret-id-123"}})),
	}
	for _, err := range c.Search(ctx, "Observation", url.Values{"patient": {"secret-id-123"}}) {
		errs["Search"] = err
	}
	for name, err := range errs {
		wantError(t, err, 0)
		if !errors.Is(err, errLaunchOver) {
			t.Errorf("%s: errors.Is(%v, the Transport's error) = false", name, err)
		}
		if msg := err.Error(); strings.Contains(msg, "secret-id-123") || strings.Contains(msg, "ehr.test") {
			t.Errorf("%s: message %q holds the URL", name, msg)
		}
	}
}

// No error message holds an id or a query value of the request: not the
// client's own words, and not the server's, which often echo them.
func TestErrorsCarryNoIDOrQuery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const id, name = "secret-id-123", "Shaw-Amy"

	env := newEnv(t)
	err := env.c.Read(ctx, "Patient/"+id, new(any))
	e := wantError(t, err, http.StatusNotFound)
	if !strings.Contains(e.Outcome.String(), id) {
		t.Fatalf("the server's outcome %q does not echo the id; the test needs one that does", e.Outcome)
	}
	if msg := err.Error(); strings.Contains(msg, id) || !strings.Contains(msg, "GET Patient: 404 Not Found") || !strings.Contains(msg, "Patient/… is not known") {
		t.Errorf("message %q: want the request, status and outcome, without the id", msg)
	}
	err = env.c.Delete(ctx, "Patient/"+id)
	if msg := fmt.Sprint(err); strings.Contains(msg, id) || !errors.Is(err, fhir.ErrNotFound) {
		t.Errorf("Delete: %q, want not found without the id", msg)
	}

	// A server that echoes everything it was sent, path and query.
	echo, _ := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{"resourceType": "OperationOutcome", "issue": []any{map[string]any{
			"severity": "error", "code": "invalid",
			"diagnostics": "bad " + r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery + " for " + r.URL.Query().Get("patient") +
				" named " + r.URL.Query().Get("name") + " with " + r.Header.Get("If-None-Exist") + " of " + string(body) + "\nforged log line",
		}}})
	})
	q := url.Values{"patient": {"Patient/" + id}, "name": {name}}
	var errs []error
	for _, err := range echo.Search(ctx, "Observation", q) {
		errs = append(errs, err)
	}
	errs = append(errs,
		echo.Read(ctx, "Observation?patient="+id+"&name="+name, new(any)),
		second(echo.Create(ctx, "Patient", map[string]any{"resourceType": "Patient"}, fhir.IfNoneExist(url.Values{"identifier": {"urn:mrn|" + id}}))),
		second(echo.Transaction(ctx, []fhir.BundleEntry{{Method: "GET", URL: "Observation?patient=" + id}})),
	)
	for _, err := range errs {
		e := wantError(t, err, http.StatusBadRequest)
		msg := err.Error()
		if strings.Contains(msg, id) || strings.Contains(msg, name) || strings.Contains(msg, "Shaw") {
			t.Errorf("message %q holds the request's id or query", msg)
		}
		if strings.Contains(msg, "\n") || !strings.Contains(msg, "forged log line") {
			t.Errorf("message %q: want the outcome on one line", msg)
		}
		if !strings.Contains(e.Outcome.String(), id) && !strings.Contains(e.Outcome.String(), url.QueryEscape(id)) {
			t.Errorf("Outcome %q is not the server's as sent", e.Outcome)
		}
	}
}

// errors.Is(err, ErrNotFound) holds for 404 and 410 answers, of requests
// and of batch entries, and for nothing else.
func TestErrNotFound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		want   bool
	}{
		{http.StatusNotFound, true},
		{http.StatusGone, true},
		{http.StatusBadRequest, false},
		{http.StatusForbidden, false},
		{http.StatusInternalServerError, false},
	} {
		c, _ := hostile(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				fmt.Fprintf(w, `{"resourceType":"Bundle","type":"batch-response","entry":[{"response":{"status":"%d"}}]}`, tc.status)
				return
			}
			w.WriteHeader(tc.status)
		})
		err := c.Read(context.Background(), "Patient/x", new(any))
		wantError(t, err, tc.status)
		if errors.Is(err, fhir.ErrNotFound) != tc.want {
			t.Errorf("%d: errors.Is(err, ErrNotFound) = %v", tc.status, !tc.want)
		}
		resps, err := c.Batch(context.Background(), []fhir.BundleEntry{{Method: "GET", URL: "Patient/x"}})
		if err != nil {
			t.Fatal(err)
		}
		if errors.Is(resps[0].Err(), fhir.ErrNotFound) != tc.want {
			t.Errorf("%d: errors.Is(entry.Err(), ErrNotFound) = %v", tc.status, !tc.want)
		}
	}
	if errors.Is(&fhir.Error{}, fhir.ErrNotFound) {
		t.Error("an *Error without a status matches ErrNotFound")
	}
}

// A server's text in a message is stripped of control characters and
// shortened.
func TestErrorMessageKeepsTheServerShort(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("very long diagnostics ", 1000)
	c, _ := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(map[string]any{"resourceType": "OperationOutcome", "issue": []any{map[string]any{
			"severity": "fatal", "code": "exception", "diagnostics": "line one\r\nline two\x1b[31m " + long,
		}}})
	})
	err := c.Read(context.Background(), "Patient/x", new(any))
	e := wantError(t, err, http.StatusInternalServerError)
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n\x1b") || len(msg) > 400 || !strings.Contains(msg, "line one  line two [31m very long") {
		t.Errorf("message (%d bytes) %q", len(msg), msg)
	}
	if len(e.Outcome.Issue[0].Diagnostics) < len(long) {
		t.Error("Outcome was shortened; it should be as sent")
	}
	// An Error built by hand shows its Outcome the same way.
	hand := &fhir.Error{Method: "GET", StatusCode: 500, Outcome: e.Outcome}
	if m := hand.Error(); strings.ContainsAny(m, "\r\n") || len(m) > 400 {
		t.Errorf("hand-built message %q", m)
	}
}
