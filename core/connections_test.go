package core_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// Connections to the EHR are kept alive and reused: by discovery, the key
// set, the token endpoint and FHIR requests alike, and by a page's parallel
// reads. These tests count the connections the EHR accepts; they time
// nothing. The browser's step at the authorize endpoint is served in
// process, so every connection counted is the engine's.

// launchesForConnections is how many sequential launches are counted, and
// maxLaunchConnections the connections they may open in all: one
// transport serves every request to the EHR's origin, so one connection
// serves them all; one more is slack.
const (
	launchesForConnections = 200
	maxLaunchConnections   = 2
)

// pageViews is how many page views are counted, each with pageReads
// parallel FHIR reads as the example app's page makes; they may open at
// most pageReads connections (the most in use at once) and two more.
const (
	pageViews = 50
	pageReads = 5
)

func TestSequentialLaunchesReuseConnections(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	ctx := context.Background()
	before := h.ehr.Connections()
	for i := range launchesForConnections {
		rc := h.launchInProcess(ctx, "sess")
		var p struct{ ID string }
		if err := readPatient(ctx, rc, &p); err != nil || p.ID == "" {
			t.Fatalf("launch %d: Patient read: %v (id %q)", i, err, p.ID)
		}
	}
	if got := h.ehr.Connections() - before; got > maxLaunchConnections {
		t.Errorf("%d sequential launches (launch, callback, one FHIR read) opened %d connections to the EHR, want at most %d", launchesForConnections, got, maxLaunchConnections)
	} else {
		t.Logf("%d sequential launches opened %d connections to the EHR", launchesForConnections, got)
	}
}

func TestParallelReadsOfPagesReuseConnections(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	ctx := context.Background()
	rc := h.launchInProcess(ctx, "sess")
	// Every answer takes a little while, so that a page's reads overlap as
	// they do over a real network.
	h.ehr.SetFaults(smarttest.Faults{Latency: 2 * time.Millisecond})
	before := h.ehr.Connections()
	for view := range pageViews {
		rc, err := h.eng.Ready(ctx, "sess", rc.Handle())
		if err != nil {
			t.Fatalf("page view %d: Ready: %v", view, err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, pageReads)
		for range pageReads {
			wg.Go(func() {
				var p struct{ ID string }
				errs <- readPatient(ctx, rc, &p)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("page view %d: %v", view, err)
			}
		}
	}
	if got, want := h.ehr.Connections()-before, pageReads+2; got > want {
		t.Errorf("%d page views of %d parallel FHIR reads each opened %d connections to the EHR, want at most %d", pageViews, pageReads, got, want)
	} else {
		t.Logf("%d page views of %d parallel FHIR reads each opened %d connections to the EHR", pageViews, pageReads, got)
	}
}

// launchInProcess runs a standalone launch and its callback in the browser
// and returns the launch's ReadyClient. The authorize step, the browser's,
// is served by the EHR's handler in process, so it opens no connection.
func (h *harness) launchInProcess(ctx context.Context, browser string) *core.ReadyClient {
	h.t.Helper()
	authURL, err := h.eng.Launch(ctx, browser, h.ehr.FHIRBaseURL(), "")
	if err != nil {
		h.t.Fatalf("Launch: %v", err)
	}
	w := httptest.NewRecorder()
	h.ehr.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, authURL, nil))
	if w.Code != http.StatusFound {
		h.t.Fatalf("authorize: status %d, want 302", w.Code)
	}
	loc, err := url.Parse(w.Header().Get("Location"))
	if err != nil {
		h.t.Fatalf("authorize: Location: %v", err)
	}
	res, err := h.eng.Callback(ctx, browser, core.CallbackRequest{Query: loc.Query()})
	if err != nil {
		h.t.Fatalf("Callback: %v", err)
	}
	rc, err := h.eng.Ready(ctx, browser, res.Handle())
	if err != nil {
		h.t.Fatalf("Ready: %v", err)
	}
	return rc
}
