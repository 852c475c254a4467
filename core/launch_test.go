package core_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

func TestLaunchRefuses(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	for _, tc := range []struct {
		name string
		iss  string
		code core.Code
	}{
		{"missing issuer", "", core.CodeInvalidRequest},
		{"relative issuer", "/fhir", core.CodeInvalidRequest},
		{"issuer with a query", h.ehr.FHIRBaseURL() + "?x=1", core.CodeInvalidRequest},
		{"unknown issuer", "https://evil.example/fhir", core.CodeUnknownIssuer},
		{"javascript scheme", "javascript:alert(1)", core.CodeInvalidRequest},
		{"ftp scheme", "ftp://ehr.example/fhir", core.CodeUnknownIssuer},
		{"over-long issuer", "https://" + strings.Repeat("a", 5000) + ".example", core.CodeInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.eng.Launch(context.Background(), "b", tc.iss, "x")
			wantCode(t, err, tc.code)
		})
	}
	t.Run("no browser session", func(t *testing.T) {
		_, err := h.eng.Launch(context.Background(), "", h.ehr.FHIRBaseURL(), "")
		wantCode(t, err, core.CodeNoLaunch)
	})
	if n := h.store.len(); n != 0 {
		t.Errorf("refused launches stored %d records", n)
	}
}

func TestHTTPIssuerNeedsAllowInsecureHTTP(t *testing.T) {
	t.Parallel()
	ehr := smarttest.NewServer(smarttest.Options{})
	t.Cleanup(ehr.Close)
	cfg := core.Config{ClientID: "app", CallbackURL: "https://app.test/cb",
		Issuers: []core.Issuer{{URL: ehr.FHIRBaseURL()}}}
	_, err := core.New(cfg)
	wantCode(t, err, core.CodeInvalidConfig)
	if !strings.Contains(err.Error(), "Issuers[0].URL") {
		t.Errorf("error %q does not name the field", err)
	}
	// With AllowAnyIssuer the http issuer is refused at launch time.
	eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb", AllowAnyIssuer: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = eng.Launch(context.Background(), "b", ehr.FHIRBaseURL(), "")
	wantCode(t, err, core.CodeUnknownIssuer)
	if ehr.Count(smarttest.EndpointDiscovery) != 0 {
		t.Error("the refused issuer was contacted")
	}
}

func TestAllowAnyIssuerRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	ehr := smarttest.NewServer(smarttest.Options{})
	t.Cleanup(ehr.Close)
	eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb",
		AllowAnyIssuer: true, AllowInsecureHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = eng.Launch(context.Background(), "b", ehr.FHIRBaseURL(), "")
	wantCode(t, err, core.CodeDiscoveryFailed)
	if !strings.Contains(err.Error(), "refused to dial") {
		t.Errorf("error %q does not say the dial was refused", err)
	}
	if ehr.Count(smarttest.EndpointDiscovery) != 0 {
		t.Error("the loopback issuer was contacted")
	}
	// AllowPrivateNetworks opts out, for development.
	eng, err = core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb",
		AllowAnyIssuer: true, AllowInsecureHTTP: true, AllowPrivateNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	ehr.RegisterClient(smarttest.Client{ID: "app"})
	if _, err := eng.Launch(context.Background(), "b", ehr.FHIRBaseURL(), ""); err != nil {
		t.Fatalf("with AllowPrivateNetworks: %v", err)
	}
}

func TestOverlappingLaunchesKeepTheirOwnPatients(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	const browser = "one-browser"
	a := h.launch(browser, &smarttest.LaunchContext{Patient: "pat-1", FHIRUser: "Practitioner/prac-1"})
	b := h.launch(browser, &smarttest.LaunchContext{Patient: "pat-2", FHIRUser: "Practitioner/prac-1"})
	resB, err := h.eng.Callback(context.Background(), browser, b)
	if err != nil {
		t.Fatalf("callback B: %v", err)
	}
	resA, err := h.eng.Callback(context.Background(), browser, a)
	if err != nil {
		t.Fatalf("callback A: %v", err)
	}
	for _, c := range []struct{ handle, patient string }{{resA.Handle(), "pat-1"}, {resB.Handle(), "pat-2"}} {
		rc, err := h.eng.Ready(context.Background(), browser, c.handle)
		if err != nil {
			t.Fatal(err)
		}
		if got := rc.Patient().ID; got != c.patient {
			t.Errorf("handle for %s sees %s", c.patient, got)
		}
	}
	// Without a handle: the most recent launch (A finished last).
	rc, err := h.eng.Ready(context.Background(), browser, "")
	if err != nil || rc.Patient().ID != "pat-1" {
		t.Fatalf("most recent launch: %v %v", rc, err)
	}
	// Another browser can use neither handle.
	for _, handle := range []string{resA.Handle(), resB.Handle()} {
		_, err = h.eng.Ready(context.Background(), "other-browser", handle)
		wantCode(t, err, core.CodeNoLaunch)
	}
}

func TestReadyRefuses(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	_, err := h.eng.Ready(context.Background(), "fresh", "")
	wantCode(t, err, core.CodeNoLaunch)
	_, err = h.eng.Ready(context.Background(), "fresh", "no-such-handle")
	wantCode(t, err, core.CodeNoLaunch)
	_, err = h.eng.Ready(context.Background(), "", "")
	wantCode(t, err, core.CodeNoLaunch)
	h.store.setFail(errors.New("redis: connection refused"))
	_, err = h.eng.Ready(context.Background(), "fresh", "")
	wantCode(t, err, core.CodeStorageUnavailable)
}

// A browser keeps its MaxLaunches most recent launches; Logout ends every
// one of them and leaves nothing in the store.
func TestBrowserKeepsAtMostMaxLaunches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{MaxLaunches: 3}, core.Issuer{})
	var handles []string
	for i := range 5 {
		rc := h.complete("b", &smarttest.LaunchContext{Patient: fmt.Sprintf("pat-%d", i%3+1)})
		handles = append(handles, rc.Handle())
	}
	for i, handle := range handles {
		_, err := h.eng.Ready(ctx, "b", handle)
		if i < 2 {
			wantCode(t, err, core.CodeNoLaunch) // evicted
		} else if err != nil {
			t.Fatalf("launch %d of the last three: %v", i, err)
		}
	}
	if rc, err := h.eng.Ready(ctx, "b", ""); err != nil || rc.Handle() != handles[4] {
		t.Fatalf("without a handle: %v; want the most recent launch", err)
	}
	if n := h.store.launches(); n != 3 {
		t.Errorf("%d launch records stored, want the last three", n)
	}
	if err := h.eng.Logout(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	for _, handle := range append(handles[2:], "") {
		_, err := h.eng.Ready(ctx, "b", handle)
		wantCode(t, err, core.CodeNoLaunch)
	}
	if n := h.store.len(); n != 0 {
		t.Errorf("%d records left after logout", n)
	}
}

// One discovery and one JWKS fetch serve every launch of an issuer.
func TestDiscoveryAndKeysAreFetchedOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			browser := fmt.Sprintf("browser-%d", i)
			raw, err := h.eng.Launch(context.Background(), browser, h.ehr.FHIRBaseURL(), h.ehr.NewLaunch(pat1))
			if err != nil {
				errs <- err
				return
			}
			cb, err := authorizeErr(raw)
			if err == nil {
				_, err = h.eng.Callback(context.Background(), browser, cb)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if d, k := h.ehr.Count(smarttest.EndpointDiscovery), h.ehr.Count(smarttest.EndpointJWKS); d != 1 || k != 1 {
		t.Fatalf("%d launches fetched discovery %d times and JWKS %d times, want 1 and 1", n, d, k)
	}
	if got := h.ehr.Count(smarttest.EndpointTokenCode); got != n {
		t.Fatalf("%d code exchanges, want %d", got, n)
	}
}

// Tabs finishing their callbacks at the same moment must not lose each
// other's launches from the browser's list: Logout, which ends the
// launches the list names, then ends every one of them.
func TestConcurrentCallbacksKeepEveryLaunch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{MaxLaunches: 50, MaxPendingLaunches: 50}, core.Issuer{})
	const browser, n = "many-tabs", 20
	cbs := make([]core.CallbackRequest, n)
	for i := range cbs {
		cbs[i] = h.launch(browser, &smarttest.LaunchContext{Patient: fmt.Sprintf("pat-%d", i%3+1)})
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	handles := make(chan string, n)
	for _, cb := range cbs {
		wg.Go(func() {
			rc, err := h.eng.Callback(ctx, browser, cb)
			if err != nil {
				errs <- err
				return
			}
			handles <- rc.Handle()
		})
	}
	wg.Wait()
	close(errs)
	close(handles)
	for err := range errs {
		t.Fatal(err)
	}
	if got := h.store.launches(); got != n {
		t.Fatalf("%d launch records stored, want %d", got, n)
	}
	if err := h.eng.Logout(ctx, browser); err != nil {
		t.Fatal(err)
	}
	for handle := range handles {
		_, err := h.eng.Ready(ctx, browser, handle)
		wantCode(t, err, core.CodeNoLaunch)
	}
	if left := h.store.launches(); left != 0 {
		t.Fatalf("%d of %d launches outlived Logout: the browser's list lost them", left, n)
	}
}
