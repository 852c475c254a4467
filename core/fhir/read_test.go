package fhir_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fhirware/smart/core/fhir"
	"github.com/fhirware/smart/core/smarttest"
)

func TestNewClient(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{
		"", "fhir", "/fhir", "ftp://ehr.test/fhir", "https:///fhir", "https://user:pw@ehr.test/fhir",
		"https://ehr.test/fhir?x=1", "https://ehr.test/fhir#f", "https://ehr.test/fhir/../auth", "https://ehr.test/%zz",
	} {
		c, err := fhir.NewClient(bad, nil)
		var e *fhir.Error
		if c != nil || !errors.As(err, &e) {
			t.Errorf("NewClient(%q) = %v, %v; want an *Error", bad, c, err)
		}
		if strings.Contains(fmt.Sprint(err), "pw") {
			t.Errorf("NewClient(%q): message %q shows the URL's password", bad, err)
		}
	}
	c, err := fhir.NewClient("HTTPS://ehr.test/fhir/r4/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.BaseURL(); got != "https://ehr.test/fhir/r4" {
		t.Errorf("BaseURL() = %q, want the URL without its trailing slash", got)
	}
	if c.HTTPClient() != http.DefaultClient {
		t.Error("HTTPClient() of a Client made with nil is not http.DefaultClient")
	}
	hc := &http.Client{}
	if c, _ := fhir.NewClient("http://ehr.test", hc); c.HTTPClient() != hc || c.BaseURL() != "http://ehr.test" {
		t.Errorf("NewClient(…, hc): HTTPClient() = %p, BaseURL() = %q", c.HTTPClient(), c.BaseURL())
	}
}

func TestRead(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ctx := context.Background()

	var p fhirPatient
	if err := env.c.Read(ctx, "Patient/pat-1", &p); err != nil {
		t.Fatalf("Read: %v", err)
	}
	if p.ResourceType != "Patient" || p.ID != "pat-1" || p.Gender != "female" {
		t.Errorf("Read = %+v, want pat-1", p)
	}
	p2, err := fhir.Read[fhirPatient](ctx, env.c, "Patient/pat-2")
	if err != nil || p2.ID != "pat-2" || p2.Gender != "male" {
		t.Errorf("Read[fhirPatient](Patient/pat-2) = %+v, %v", p2, err)
	}
	abs, err := fhir.Read[fhirPatient](ctx, env.c, env.base+"/Patient/pat-3")
	if err != nil || abs.ID != "pat-3" {
		t.Errorf("Read by absolute URL = %+v, %v", abs, err)
	}
	// A query whose value is a URL is still relative to the base.
	var b struct {
		ResourceType string
		Total        int
	}
	if err := env.c.Read(ctx, "Observation?subject="+env.base+"/Patient/pat-2", &b); err != nil || b.ResourceType != "Bundle" || b.Total != 5 {
		t.Errorf("Read of a search with a URL in its query = %+v, %v; want a Bundle of 5", b, err)
	}
	missing, err := fhir.Read[fhirPatient](ctx, env.c, "Patient/nobody")
	if !errors.Is(err, fhir.ErrNotFound) || missing.ID != "" {
		t.Errorf("Read[T] of a missing patient: %+v, %v; want the zero value and ErrNotFound", missing, err)
	}
	// Without a v, the answer is read and dropped.
	if err := env.c.Read(ctx, "Patient/pat-1", nil); err != nil {
		t.Errorf("Read into nil: %v", err)
	}

	reads := env.requests("/fhir/Patient/pat-1")
	if len(reads) != 2 {
		t.Fatalf("the EHR saw %d reads of Patient/pat-1, want 2", len(reads))
	}
	h := reads[0].Header
	if got := h.Get("Accept"); got != "application/fhir+json" {
		t.Errorf("Accept = %q", got)
	}
	if got := h.Get("Authorization"); got != "Bearer "+env.token {
		t.Errorf("Authorization = %q, want the HTTP client's bearer token", got)
	}
}

func TestReadErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("404", func(t *testing.T) {
		t.Parallel()
		env := newEnv(t)
		var v map[string]any
		err := env.c.Read(ctx, "Patient/nobody", &v)
		e := wantError(t, err, http.StatusNotFound)
		if !errors.Is(err, fhir.ErrNotFound) || e.Method != "GET" || e.Resource != "Patient" {
			t.Errorf("error %+v: want ErrNotFound, GET, Patient", e)
		}
		if e.Outcome == nil || len(e.Outcome.Issue) != 1 || e.Outcome.Issue[0].Code != "not-found" {
			t.Errorf("Outcome = %+v, want the server's not-found issue", e.Outcome)
		}
		if v != nil {
			t.Errorf("v was filled from an error answer: %v", v)
		}
	})

	t.Run("410 after delete", func(t *testing.T) {
		t.Parallel()
		env := newEnv(t)
		if err := env.c.Delete(ctx, "Condition/cond-1"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		var v map[string]any
		err := env.c.Read(ctx, "Condition/cond-1", &v)
		wantError(t, err, http.StatusGone)
		if !errors.Is(err, fhir.ErrNotFound) {
			t.Errorf("errors.Is(%v, ErrNotFound) = false for 410", err)
		}
	})

	t.Run("OperationOutcome", func(t *testing.T) {
		t.Parallel()
		env := newEnv(t)
		env.ehr.SetFaults(smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointFHIR: http.StatusUnprocessableEntity}})
		var p fhirPatient
		err := env.c.Read(ctx, "Patient/pat-1", &p)
		e := wantError(t, err, http.StatusUnprocessableEntity)
		if e.Outcome == nil || len(e.Outcome.Issue) != 1 {
			t.Fatalf("Outcome = %+v, want one issue", e.Outcome)
		}
		is := e.Outcome.Issue[0]
		if is.Severity != "error" || is.Code != "exception" || !strings.Contains(is.Diagnostics, "fault injected") {
			t.Errorf("issue = %+v", is)
		}
		if msg := err.Error(); !strings.Contains(msg, "fault injected") || !strings.Contains(msg, "422") || !strings.HasPrefix(msg, "fhir: GET Patient: 422") {
			t.Errorf("message %q lacks the request, the status or the diagnostics", msg)
		}
		if errors.Is(err, fhir.ErrNotFound) {
			t.Error("a 422 matches ErrNotFound")
		}
	})

	t.Run("malformed JSON", func(t *testing.T) {
		t.Parallel()
		env := newEnv(t)
		env.ehr.SetFaults(smarttest.Faults{MalformedJSON: map[smarttest.Endpoint]bool{smarttest.EndpointFHIR: true}})
		var p fhirPatient
		err := env.c.Read(ctx, "Patient/pat-1", &p)
		e := wantError(t, err, http.StatusOK)
		var se *json.SyntaxError
		if !errors.As(err, &se) || e.Outcome != nil {
			t.Errorf("error %v: want the JSON syntax error as its cause", err)
		}
	})

	t.Run("malformed references", func(t *testing.T) {
		t.Parallel()
		env := newEnv(t)
		for _, ref := range []string{"", "../auth/jwks", "Patient/../../auth/jwks", "Patient/%2e%2e/x", `Patient\..\x`, "//evil.example/fhir/Patient/1", "Patient/%zz"} {
			var v map[string]any
			err := env.c.Read(ctx, ref, &v)
			wantError(t, err, 0)
		}
		if n := env.ehr.Count(smarttest.EndpointFHIR) + env.ehr.Count(smarttest.EndpointJWKS); n != 0 {
			t.Errorf("malformed references made %d requests", n)
		}
	})
}

// An absolute URL on another origin is not fetched: the HTTP client may
// carry the FHIR server's credentials, and the reference may come from a
// resource a server sent.
func TestReadRefusesAnotherOrigin(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	other, rec := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"resourceType":"Practitioner","id":"remote-1"}`)
	})
	var v map[string]any
	for _, ref := range []string{other.BaseURL() + "/Practitioner/remote-1", "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a", "javascript:alert(1)"} {
		err := env.c.Read(context.Background(), ref, &v)
		wantError(t, err, 0)
		if !errors.Is(err, fhir.ErrForeignReference) {
			t.Errorf("Read(%q): %v, want ErrForeignReference", ref, err)
		}
		if strings.Contains(err.Error(), "remote-1") {
			t.Errorf("message %q names the reference's id", err)
		}
	}
	if got := rec.requests(""); len(got) != 0 {
		t.Errorf("the other origin got %d requests", len(got))
	}
	if got := env.requests(""); len(got) != 0 {
		t.Errorf("%d requests were sent", len(got))
	}
	// The other server's own Client reads it.
	if err := other.Read(context.Background(), other.BaseURL()+"/Practitioner/remote-1", &v); err != nil || v["id"] != "remote-1" {
		t.Errorf("Read through the other server's Client = %v, %v", v, err)
	}
}

// An answer that says it is larger than the client reads (64 MiB) is
// refused before its body is read. (An answer that grows past the cap
// while it is read is tested with a smaller cap in cap_internal_test.go.)
func TestReadRefusesAnswerOver64MiB(t *testing.T) {
	t.Parallel()
	c, _ := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(64<<20+1))
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"resourceType":"Patient","id":"pat-1","pad":"`)
	})
	var p fhirPatient
	err := c.Read(context.Background(), "Patient/pat-1", &p)
	wantError(t, err, http.StatusOK)
	if !strings.Contains(err.Error(), "64 MiB") || p.ID != "" {
		t.Errorf("Read = %+v, %v; want an error saying the answer is too large", p, err)
	}
}

func TestReadHonoursContext(t *testing.T) {
	t.Parallel()
	env := newEnv(t)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var p fhirPatient
	err := env.c.Read(ctx, "Patient/pat-1", &p)
	wantError(t, err, 0)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Read with a cancelled context: %v, want context.Canceled", err)
	}

	env.ehr.SetFaults(smarttest.Faults{Latency: 10 * time.Second})
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = env.c.Read(ctx, "Patient/pat-1", &p)
	wantError(t, err, 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Read past the deadline: %v, want context.DeadlineExceeded", err)
	}
}
