package core_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/fhir"
	"github.com/fhirware/smart/core/smarttest"
)

// The launch's FHIR client reads the launch context's resources with the
// launch's token, on the launch's FHIR server.
func TestReadyClientReadsLaunchContext(t *testing.T) {
	t.Parallel()
	env := launchForFHIR(t, fhirSetup{})
	ctx := context.Background()
	rc := env.rc
	c := rc.FHIR()
	if c.BaseURL() != env.base {
		t.Errorf("the FHIR client's base is %q, want the launch's issuer %q", c.BaseURL(), env.base)
	}
	if rc.FHIR() != c {
		t.Error("FHIR() made a second client for one ReadyClient")
	}

	var p fhirPatient
	if err := readPatient(ctx, rc, &p); err != nil {
		t.Fatalf("reading the patient: %v", err)
	}
	if p.ResourceType != "Patient" || p.ID != "pat-1" || p.Gender != "female" {
		t.Errorf("the patient = %+v, want pat-1", p)
	}
	var enc struct{ ResourceType, ID string }
	if err := c.Read(ctx, rc.Encounter().String(), &enc); err != nil || enc.ID != "enc-1" || enc.ResourceType != "Encounter" {
		t.Errorf("the encounter = %+v, %v; want enc-1", enc, err)
	}
	if got := rc.User(); got != (fhir.Reference{Type: "Practitioner", ID: "prac-1"}) {
		t.Errorf("User() = %+v", got)
	}
	var user struct{ ResourceType, ID string }
	if err := c.Read(ctx, rc.User().String(), &user); err != nil || user.ID != "prac-1" || user.ResourceType != "Practitioner" {
		t.Errorf("the user = %+v, %v; want prac-1", user, err)
	}

	p2, err := fhir.Read[fhirPatient](ctx, c, "Patient/pat-2")
	if err != nil || p2.ID != "pat-2" || p2.Gender != "male" {
		t.Errorf("fhir.Read[fhirPatient](Patient/pat-2) = %+v, %v", p2, err)
	}
	abs, err := fhir.Read[fhirPatient](ctx, c, env.base+"/Patient/pat-3")
	if err != nil || abs.ID != "pat-3" {
		t.Errorf("a read by absolute URL = %+v, %v", abs, err)
	}
	// The server's error answers come through as they are.
	if _, err := fhir.Read[fhirPatient](ctx, c, "Patient/nobody"); !errors.Is(err, fhir.ErrNotFound) {
		t.Errorf("reading a missing patient: %v, want fhir.ErrNotFound", err)
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

// A launch without an encounter has the zero Reference, and reading it
// sends nothing.
func TestContextWithoutEncounter(t *testing.T) {
	t.Parallel()
	env := launchForFHIR(t, fhirSetup{launch: smarttest.LaunchContext{Patient: "pat-2"}})
	enc := env.rc.Encounter()
	if !enc.IsZero() || enc.ID != "" || enc.String() != "" {
		t.Errorf("Encounter() = %+v, want none", enc)
	}
	var v map[string]any
	wantFHIRStatus(t, env.rc.FHIR().Read(context.Background(), enc.String(), &v), 0)
	if n := env.ehr.Count(smarttest.EndpointFHIR); n != 0 {
		t.Errorf("FHIR requests = %d, want 0", n)
	}
}

// Config.MaxFHIRResponseBytes caps every answer of the launch's FHIR
// server.
func TestReadResponseCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		cap     int64 // Config.MaxFHIRResponseBytes; 0 for the default (8 MiB)
		size    int   // the answer's size
		wantErr bool
		// status is the *fhir.Error's: 0 when the answer was refused
		// before its body was read, 200 when it was cut off while reading.
		status  int
		wantMsg string
	}{
		// Small answers go with a Content-Length, refused before reading;
		// large ones are chunked, cut off while reading.
		{"content-length over the cap", 1000, 1500, true, 0, "> 1000 bytes)"},
		{"content-length under the cap", 2000, 1500, false, 0, ""},
		{"chunked over the cap", 64 << 10, 100 << 10, true, http.StatusOK, "reading the answer"},
		{"default cap: 9 MiB", 0, 9 << 20, true, http.StatusOK, "reading the answer"},
		{"default cap: 7 MiB", 0, 7 << 20, false, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := launchForFHIR(t, fhirSetup{config: func(c *core.Config) { c.MaxFHIRResponseBytes = tc.cap }})
			env.ehr.SetFaults(smarttest.Faults{Oversize: map[smarttest.Endpoint]int{smarttest.EndpointFHIR: tc.size}})
			var p fhirPatient
			err := readPatient(ctx, env.rc, &p)
			if !tc.wantErr {
				if err != nil || p.ID != "pat-1" {
					t.Fatalf("read = %+v, %v; want pat-1", p, err)
				}
				return
			}
			wantFHIRStatus(t, err, tc.status)
			if tc.status == 0 && !errors.Is(err, core.CodeFHIRRequestFailed) {
				t.Errorf("error %v: want the launch's fhir_request_failed inside", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "exceeds the size limit") || !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("error %q does not say the answer is too large (%s)", msg, tc.wantMsg)
			}
		})
	}
}

// A read through the launch's client is bounded by its context.
func TestReadHonoursContext(t *testing.T) {
	t.Parallel()
	env := launchForFHIR(t, fhirSetup{})

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var p fhirPatient
	err := readPatient(ctx, env.rc, &p)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, core.CodeFHIRRequestFailed) {
		t.Errorf("a read with a cancelled context: %v, want fhir_request_failed wrapping context.Canceled", err)
	}
	wantFHIRStatus(t, err, 0)

	env.ehr.SetFaults(smarttest.Faults{Latency: 10 * time.Second})
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = readPatient(ctx, env.rc, &p)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a read past the deadline: %v, want context.DeadlineExceeded", err)
	}
}

// The launch's token, and the issuer's headers, go to the launch's FHIR
// origin only: not with a request to another origin through the client's
// Do or HTTPClient, where a caller's own Authorization is dropped too.
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
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, other.URL+"/Patient/pat-1", nil)
	req.Header.Set("Authorization", "Bearer callers-own")
	resp, err := env.rc.FHIR().Do(req)
	if err != nil {
		t.Fatalf("Do to another origin: %v", err)
	}
	resp.Body.Close()
	if got := req.Header.Get("Authorization"); got != "Bearer callers-own" {
		t.Errorf("Do changed the caller's request: Authorization = %q", got)
	}

	// HTTPClient: the same rules, for other libraries.
	hc := env.rc.FHIR().HTTPClient()
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
	fhirReads := env.requests("/fhir/Patient/pat-1")
	if len(fhirReads) != 1 || !strings.HasPrefix(fhirReads[0].Header.Get("Authorization"), "Bearer ") {
		t.Fatalf("the FHIR server saw %d reads, want 1 with the token", len(fhirReads))
	}
	if got := fhirReads[0].Header.Get("X-Vendor-Quirk"); got != "on" {
		t.Errorf("Issuer.Header not sent to the FHIR server: X-Vendor-Quirk = %q", got)
	}
}

// A fhirUser on another server keeps its URL. The launch's client does not
// Read it (the reference leads to another origin); its Do fetches it,
// without the token.
func TestUserOnAnotherServerIsReadWithoutToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	other := newHeaderRecorder(t)
	userURL := other.URL + "/fhir/Practitioner/remote-1"
	env := launchForFHIR(t, fhirSetup{launch: smarttest.LaunchContext{
		Patient: "pat-1", FHIRUser: userURL,
	}, config: func(c *core.Config) {
		c.AllowPrivateNetworks = true // the user's server is on 127.0.0.1
	}})
	user := env.rc.User()
	if user != (fhir.Reference{Type: "Practitioner", ID: "remote-1", URL: userURL}) || user.String() != userURL {
		t.Fatalf("User() = %+v", user)
	}
	var v map[string]any
	if err := env.rc.FHIR().Read(ctx, user.String(), &v); !errors.Is(err, fhir.ErrForeignReference) {
		t.Errorf("Read of the user on another server: %v, want fhir.ErrForeignReference", err)
	}
	if n := len(other.requests()); n != 0 {
		t.Fatalf("the refused Read reached the user's server (%d requests)", n)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, user.String(), nil)
	resp, err := env.rc.FHIR().Do(req)
	if err != nil {
		t.Fatalf("Do of the user's URL: %v", err)
	}
	resp.Body.Close()
	seen := other.requests()
	if len(seen) != 1 || seen[0].Header.Get("Authorization") != "" {
		t.Fatalf("the user's server saw %d requests (%v), want 1 without a token", len(seen), seen)
	}
}
