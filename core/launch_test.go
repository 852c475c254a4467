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
	s := h.session("b")
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
			_, err := s.Launch(context.Background(), core.LaunchRequest{Issuer: tc.iss, Launch: "x"})
			wantCode(t, err, tc.code)
		})
	}
	t.Run("no browser session", func(t *testing.T) {
		_, err := h.session("").Launch(context.Background(), core.LaunchRequest{Issuer: h.ehr.FHIRBaseURL()})
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
	cfg := core.Config{ClientID: "app", CallbackURL: "https://app.test/cb", RedirectURL: "/",
		Issuers: []core.Issuer{{URL: ehr.FHIRBaseURL()}}}
	_, err := core.New(cfg)
	wantCode(t, err, core.CodeInvalidConfig)
	if !strings.Contains(err.Error(), "Issuers[0].URL") {
		t.Errorf("error %q does not name the field", err)
	}
	// With AllowAnyIssuer the http issuer is refused at launch time.
	eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb", RedirectURL: "/", AllowAnyIssuer: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = eng.Session("b", newMemStorage(nil)).Launch(context.Background(), core.LaunchRequest{Issuer: ehr.FHIRBaseURL()})
	wantCode(t, err, core.CodeUnknownIssuer)
	if ehr.Count(smarttest.EndpointDiscovery) != 0 {
		t.Error("the refused issuer was contacted")
	}
}

func TestAllowAnyIssuerRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	ehr := smarttest.NewServer(smarttest.Options{})
	t.Cleanup(ehr.Close)
	eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb", RedirectURL: "/",
		AllowAnyIssuer: true, AllowInsecureHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = eng.Session("b", newMemStorage(nil)).Launch(context.Background(), core.LaunchRequest{Issuer: ehr.FHIRBaseURL()})
	wantCode(t, err, core.CodeDiscoveryFailed)
	if !strings.Contains(err.Error(), "refused to dial") {
		t.Errorf("error %q does not say the dial was refused", err)
	}
	if ehr.Count(smarttest.EndpointDiscovery) != 0 {
		t.Error("the loopback issuer was contacted")
	}
	// AllowPrivateNetworks opts out, for development.
	eng, err = core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb", RedirectURL: "/",
		AllowAnyIssuer: true, AllowInsecureHTTP: true, AllowPrivateNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	ehr.RegisterClient(smarttest.Client{ID: "app"})
	if _, err := eng.Session("b", newMemStorage(nil)).Launch(context.Background(), core.LaunchRequest{Issuer: ehr.FHIRBaseURL()}); err != nil {
		t.Fatalf("with AllowPrivateNetworks: %v", err)
	}
}

func TestOverlappingLaunchesKeepTheirOwnPatients(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	s := h.session("one-browser")
	a := h.launch(s, &smarttest.LaunchContext{Patient: "pat-1", FHIRUser: "Practitioner/prac-1"})
	b := h.launch(s, &smarttest.LaunchContext{Patient: "pat-2", FHIRUser: "Practitioner/prac-1"})
	resB, err := s.Callback(context.Background(), b)
	if err != nil {
		t.Fatalf("callback B: %v", err)
	}
	resA, err := s.Callback(context.Background(), a)
	if err != nil {
		t.Fatalf("callback A: %v", err)
	}
	for _, c := range []struct{ handle, patient string }{{resA.Handle, "pat-1"}, {resB.Handle, "pat-2"}} {
		rc, err := s.Ready(context.Background(), c.handle)
		if err != nil {
			t.Fatal(err)
		}
		if got := rc.Patient().ID(); got != c.patient {
			t.Errorf("handle for %s sees %s", c.patient, got)
		}
	}
	// Without a handle: the most recent launch (A finished last).
	rc, err := s.Ready(context.Background(), "")
	if err != nil || rc.Patient().ID() != "pat-1" {
		t.Fatalf("most recent launch: %v %v", rc, err)
	}
	// Another browser session can use neither handle.
	_, err = h.session("other-browser").Ready(context.Background(), resA.Handle)
	wantCode(t, err, core.CodeNoLaunch)
}

func TestReadyRefuses(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	_, err := h.session("fresh").Ready(context.Background(), "")
	wantCode(t, err, core.CodeNoLaunch)
	_, err = h.session("fresh").Ready(context.Background(), "no-such-handle")
	wantCode(t, err, core.CodeNoLaunch)
	_, err = h.session("").Ready(context.Background(), "")
	wantCode(t, err, core.CodeNoLaunch)
	h.store.setFail(errors.New("redis: connection refused"))
	_, err = h.session("fresh").Ready(context.Background(), "")
	wantCode(t, err, core.CodeStorageUnavailable)
}

func TestSessionKeepsAtMostMaxLaunches(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{MaxLaunches: 3}, core.Issuer{})
	s := h.session("b")
	var handles []string
	for i := range 5 {
		res := h.complete(s, &smarttest.LaunchContext{Patient: fmt.Sprintf("pat-%d", i%3+1)})
		handles = append(handles, res.Handle)
	}
	got, err := s.Handles(context.Background())
	if err != nil || strings.Join(got, ",") != strings.Join(handles[2:], ",") {
		t.Fatalf("handles %v (%v), want the last three", got, err)
	}
	_, err = s.Ready(context.Background(), handles[0])
	wantCode(t, err, core.CodeNoLaunch)
	if err := s.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err = s.Ready(context.Background(), handles[4])
	wantCode(t, err, core.CodeNoLaunch)
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
			s := h.session(fmt.Sprintf("browser-%d", i))
			req := core.LaunchRequest{Issuer: h.ehr.FHIRBaseURL(), Launch: h.ehr.NewLaunch(pat1)}
			raw, err := s.Launch(context.Background(), req)
			if err != nil {
				errs <- err
				return
			}
			cb, err := authorizeErr(raw)
			if err == nil {
				_, err = s.Callback(context.Background(), cb)
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
// other's launches from the session's list.
func TestConcurrentCallbacksKeepEveryLaunch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{MaxLaunches: 50, MaxPendingLaunches: 50}, core.Issuer{})
	s := h.session("many-tabs")
	const n = 20
	cbs := make([]core.CallbackRequest, n)
	for i := range cbs {
		cbs[i] = h.launch(s, &smarttest.LaunchContext{Patient: fmt.Sprintf("pat-%d", i%3+1)})
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, cb := range cbs {
		wg.Go(func() {
			if _, err := s.Callback(context.Background(), cb); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	handles, err := s.Handles(context.Background())
	if err != nil || len(handles) != n {
		t.Fatalf("the session lists %d launches (%v), want %d", len(handles), err, n)
	}
}
