package core_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

func TestReadyClientReadsLaunchContext(t *testing.T) {
	t.Parallel()
	env := launchForFHIR(t, fhirSetup{})
	ctx := context.Background()
	rc := env.rc

	var p fhirPatient
	if err := rc.Patient().Read(ctx, &p); err != nil {
		t.Fatalf("Patient().Read: %v", err)
	}
	if p.ResourceType != "Patient" || p.ID != "pat-1" || p.Gender != "female" {
		t.Errorf("Patient().Read = %+v, want pat-1", p)
	}
	var enc struct{ ResourceType, ID string }
	if err := rc.Encounter().Read(ctx, &enc); err != nil || enc.ID != "enc-1" || enc.ResourceType != "Encounter" {
		t.Errorf("Encounter().Read = %+v, %v; want enc-1", enc, err)
	}
	var user struct{ ResourceType, ID string }
	if err := rc.User().Read(ctx, &user); err != nil || user.ID != "prac-1" || user.ResourceType != "Practitioner" {
		t.Errorf("User().Read = %+v, %v; want prac-1", user, err)
	}
	if got := rc.User().Reference(); got != "Practitioner/prac-1" {
		t.Errorf("User().Reference() = %q", got)
	}

	p2, err := core.Read[fhirPatient](ctx, rc, "Patient/pat-2")
	if err != nil || p2.ID != "pat-2" || p2.Gender != "male" {
		t.Errorf("Read[fhirPatient](Patient/pat-2) = %+v, %v", p2, err)
	}
	abs, err := core.Read[fhirPatient](ctx, rc, env.base+"/Patient/pat-3")
	if err != nil || abs.ID != "pat-3" {
		t.Errorf("Read by absolute URL = %+v, %v", abs, err)
	}
	// A query whose value is a URL is still relative to the base.
	var b struct {
		ResourceType string
		Total        int
	}
	if err := rc.Read(ctx, "Observation?subject="+env.base+"/Patient/pat-2", &b); err != nil || b.ResourceType != "Bundle" || b.Total != 5 {
		t.Errorf("Read of a search with a URL in its query = %+v, %v; want a Bundle of 5", b, err)
	}
	if _, err := core.Read[fhirPatient](ctx, rc, "Patient/nobody"); !errors.Is(err, core.CodeResourceNotFound) {
		t.Errorf("Read[T] of a missing patient: %v, want resource_not_found", err)
	}

	reads := env.requests("/fhir/Patient/pat-1")
	if len(reads) != 1 {
		t.Fatalf("the EHR saw %d reads of Patient/pat-1, want 1", len(reads))
	}
	h := reads[0].Header
	if got := h.Get("Accept"); got != "application/fhir+json" {
		t.Errorf("Accept = %q", got)
	}
	if got := h.Get("Authorization"); !strings.HasPrefix(got, "Bearer ") || len(got) < 20 {
		t.Errorf("Authorization = %q, want a bearer token", got)
	}
}

func TestContextRefWithoutResource(t *testing.T) {
	t.Parallel()
	env := launchForFHIR(t, fhirSetup{launch: smarttest.LaunchContext{Patient: "pat-2"}})
	enc := env.rc.Encounter()
	if !enc.IsZero() || enc.ID() != "" || enc.Reference() != "" {
		t.Errorf("Encounter() = %q, want none", enc.Reference())
	}
	var v map[string]any
	err := enc.Read(context.Background(), &v)
	if !errors.Is(err, core.CodeResourceNotFound) {
		t.Errorf("Encounter().Read without an encounter: %v, want resource_not_found", err)
	}
	if n := env.ehr.Count(smarttest.EndpointFHIR); n != 0 {
		t.Errorf("FHIR requests = %d, want 0", n)
	}
}

func TestReadErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("404", func(t *testing.T) {
		t.Parallel()
		env := launchForFHIR(t, fhirSetup{})
		var v map[string]any
		err := env.rc.Read(ctx, "Patient/nobody", &v)
		e := wantFHIRError(t, err, core.CodeResourceNotFound, http.StatusNotFound)
		if !errors.Is(err, core.CodeResourceNotFound) || codeOf(err).HTTPStatus() != http.StatusNotFound {
			t.Errorf("errors.Is(err, CodeResourceNotFound) fails or HTTPStatus %d", codeOf(err).HTTPStatus())
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
		env := launchForFHIR(t, fhirSetup{})
		if err := env.rc.Delete(ctx, "Condition/cond-1"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		var v map[string]any
		wantFHIRError(t, env.rc.Read(ctx, "Condition/cond-1", &v), core.CodeResourceNotFound, http.StatusGone)
	})

	t.Run("OperationOutcome", func(t *testing.T) {
		t.Parallel()
		env := launchForFHIR(t, fhirSetup{})
		env.ehr.SetFaults(smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointFHIR: http.StatusUnprocessableEntity}})
		var p fhirPatient
		err := env.rc.Patient().Read(ctx, &p)
		e := wantFHIRError(t, err, core.CodeFHIRRequestFailed, http.StatusUnprocessableEntity)
		if e.Outcome == nil || len(e.Outcome.Issue) != 1 {
			t.Fatalf("Outcome = %+v, want one issue", e.Outcome)
		}
		is := e.Outcome.Issue[0]
		if is.Severity != "error" || is.Code != "exception" || !strings.Contains(is.Diagnostics, "fault injected") {
			t.Errorf("issue = %+v", is)
		}
		if !strings.Contains(err.Error(), "fault injected") || !strings.Contains(err.Error(), "422") {
			t.Errorf("message %q lacks the status or the diagnostics", err)
		}
		if codeOf(err).HTTPStatus() != http.StatusBadGateway {
			t.Errorf("HTTPStatus = %d, want 502", codeOf(err).HTTPStatus())
		}
	})

	t.Run("malformed JSON", func(t *testing.T) {
		t.Parallel()
		env := launchForFHIR(t, fhirSetup{})
		env.ehr.SetFaults(smarttest.Faults{MalformedJSON: map[smarttest.Endpoint]bool{smarttest.EndpointFHIR: true}})
		var p fhirPatient
		wantFHIRError(t, env.rc.Patient().Read(ctx, &p), core.CodeFHIRRequestFailed, 0)
	})

	t.Run("malformed references", func(t *testing.T) {
		t.Parallel()
		env := launchForFHIR(t, fhirSetup{})
		env.ehr.ResetCounts()
		for _, ref := range []string{"../auth/jwks", "Patient/../../auth/jwks", "//evil.example/fhir/Patient/1", "Patient/%zz"} {
			var v map[string]any
			err := env.rc.Read(ctx, ref, &v)
			if codeOf(err) != core.CodeInvalidRequest {
				t.Errorf("Read(%q) = %v, want invalid_request", ref, err)
			}
		}
		if n := env.ehr.Count(smarttest.EndpointFHIR) + env.ehr.Count(smarttest.EndpointJWKS); n != 0 {
			t.Errorf("malformed references made %d requests", n)
		}
	})
}

func TestReadResponseCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		cap     int64 // Config.MaxFHIRResponseBytes; 0 for the default (8 MiB)
		size    int   // the answer's size
		wantErr bool
		wantMsg string
	}{
		// Small answers go with a Content-Length, refused before reading;
		// large ones are chunked, cut off while reading.
		{"content-length over the cap", 1000, 1500, true, "> 1000 bytes)"},
		{"content-length under the cap", 2000, 1500, false, ""},
		{"chunked over the cap", 64 << 10, 100 << 10, true, "reading the response"},
		{"default cap: 9 MiB", 0, 9 << 20, true, "exceeds the size limit"},
		{"default cap: 7 MiB", 0, 7 << 20, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := launchForFHIR(t, fhirSetup{config: func(c *core.Config) { c.MaxFHIRResponseBytes = tc.cap }})
			env.ehr.SetFaults(smarttest.Faults{Oversize: map[smarttest.Endpoint]int{smarttest.EndpointFHIR: tc.size}})
			var p fhirPatient
			err := env.rc.Patient().Read(ctx, &p)
			if !tc.wantErr {
				if err != nil || p.ID != "pat-1" {
					t.Fatalf("Read = %+v, %v; want pat-1", p, err)
				}
				return
			}
			wantFHIRError(t, err, core.CodeFHIRRequestFailed, 0)
			if msg := err.Error(); !strings.Contains(msg, "exceeds the size limit") || !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("error %q does not say the answer is too large (%s)", msg, tc.wantMsg)
			}
		})
	}
}

func TestReadHonoursContext(t *testing.T) {
	t.Parallel()
	env := launchForFHIR(t, fhirSetup{})

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var p fhirPatient
	err := env.rc.Patient().Read(ctx, &p)
	if !errors.Is(err, context.Canceled) || codeOf(err) != core.CodeFHIRRequestFailed {
		t.Errorf("Read with a cancelled context: %v, want fhir_request_failed wrapping context.Canceled", err)
	}

	env.ehr.SetFaults(smarttest.Faults{Latency: 10 * time.Second})
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = env.rc.Patient().Read(ctx, &p)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Read past the deadline: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Read took %v after its deadline of 100ms", d)
	}
}

func TestTokenStaysOnTheFHIROrigin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	other := newHeaderRecorder(t)
	env := launchForFHIR(t, fhirSetup{config: func(c *core.Config) {
		c.Issuers[0].Header = http.Header{"X-Vendor-Quirk": {"on"}}
		c.AllowPrivateNetworks = true // the other origin is on 127.0.0.1
	}})

	// Do: the caller's own Authorization is dropped off-origin, and its
	// request is left as it was.
	req, _ := http.NewRequest(http.MethodGet, other.URL+"/Patient/pat-1", nil)
	req.Header.Set("Authorization", "Bearer callers-own")
	resp, err := env.rc.Do(ctx, req)
	if err != nil {
		t.Fatalf("Do to another origin: %v", err)
	}
	resp.Body.Close()
	if got := req.Header.Get("Authorization"); got != "Bearer callers-own" {
		t.Errorf("Do changed the caller's request: Authorization = %q", got)
	}

	// HTTPClient: the same rules, for other libraries.
	hc := env.rc.HTTPClient()
	resp, err = hc.Get(other.URL + "/Observation?patient=pat-1")
	if err != nil {
		t.Fatalf("HTTPClient().Get to another origin: %v", err)
	}
	resp.Body.Close()
	resp, err = hc.Get(env.base + "/Patient/pat-1")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTPClient().Get on the FHIR origin: %v, %v", resp, err)
	}
	resp.Body.Close()

	seen := other.requests()
	if len(seen) != 2 {
		t.Fatalf("the other origin saw %d requests, want 2", len(seen))
	}
	for _, r := range seen {
		if a := r.Header.Get("Authorization"); a != "" {
			t.Errorf("%s %s carried Authorization %q", r.Method, r.URL, a)
		}
		if q := r.Header.Get("X-Vendor-Quirk"); q != "" {
			t.Errorf("%s %s carried the issuer's header", r.Method, r.URL)
		}
	}
	fhir := env.requests("/fhir/Patient/pat-1")
	if len(fhir) != 1 || !strings.HasPrefix(fhir[0].Header.Get("Authorization"), "Bearer ") {
		t.Fatalf("the FHIR server saw %d reads, want 1 with the token", len(fhir))
	}
	if got := fhir[0].Header.Get("X-Vendor-Quirk"); got != "on" {
		t.Errorf("Issuer.Header not sent to the FHIR server: X-Vendor-Quirk = %q", got)
	}
}

func TestUserOnAnotherServerIsReadWithoutToken(t *testing.T) {
	t.Parallel()
	other := newHeaderRecorder(t)
	env := launchForFHIR(t, fhirSetup{launch: smarttest.LaunchContext{
		Patient: "pat-1", FHIRUser: other.URL + "/fhir/Practitioner/remote-1",
	}, config: func(c *core.Config) {
		c.AllowPrivateNetworks = true // the user's server is on 127.0.0.1
	}})
	user := env.rc.User()
	if user.ID() != "remote-1" || user.Reference() != other.URL+"/fhir/Practitioner/remote-1" {
		t.Fatalf("User() = %q %q", user.ID(), user.Reference())
	}
	var v map[string]any
	if err := user.Read(context.Background(), &v); err != nil {
		t.Fatalf("User().Read: %v", err)
	}
	seen := other.requests()
	if len(seen) != 1 || seen[0].Header.Get("Authorization") != "" {
		t.Fatalf("the user's server saw %d requests (%v), want 1 without a token", len(seen), seen)
	}
}
