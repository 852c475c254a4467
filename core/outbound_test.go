package core_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

func TestTokenEndpointFailingOnceIsRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	h.ehr.SetFaults(smarttest.Faults{FailTimes: map[smarttest.Endpoint]int{smarttest.EndpointToken: 1}})
	s := h.session("b")
	if _, err := s.Callback(context.Background(), h.launch(s, &pat1)); err != nil {
		t.Fatalf("callback after one 500: %v", err)
	}
	if got := h.ehr.Count(smarttest.EndpointToken); got != 2 {
		t.Fatalf("token endpoint called %d times, want 2 (one failure, one retry)", got)
	}
}

func TestRetriesAreBounded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{MaxRetries: 2}, core.Issuer{})
	h.ehr.SetFaults(smarttest.Faults{FailTimes: map[smarttest.Endpoint]int{smarttest.EndpointToken: 100}})
	s := h.session("b")
	_, err := s.Callback(context.Background(), h.launch(s, &pat1))
	wantCode(t, err, core.CodeTokenExchangeFailed)
	if got := h.ehr.Count(smarttest.EndpointToken); got != 3 {
		t.Fatalf("token endpoint called %d times, want 3 (1 + 2 retries)", got)
	}
}

func TestOversizedResponsesAreRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		e    smarttest.Endpoint
		code core.Code
	}{
		{"discovery", smarttest.EndpointDiscovery, core.CodeDiscoveryFailed},
		{"token", smarttest.EndpointToken, core.CodeTokenExchangeFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{MaxResponseBytes: 64 << 10}, core.Issuer{})
			h.ehr.SetFaults(smarttest.Faults{Oversize: map[smarttest.Endpoint]int{tc.e: 200 << 10}})
			s := h.session("b")
			if tc.e == smarttest.EndpointDiscovery {
				h.ehr.SetFaults(smarttest.Faults{Oversize: map[smarttest.Endpoint]int{
					smarttest.EndpointDiscovery: 200 << 10, smarttest.EndpointMetadata: 200 << 10}})
				_, err := s.Launch(context.Background(), core.LaunchRequest{Issuer: h.ehr.FHIRBaseURL()})
				wantCode(t, err, tc.code)
				if !strings.Contains(err.Error(), "size limit") {
					t.Errorf("error %q does not mention the size limit", err)
				}
				return
			}
			_, err := s.Callback(context.Background(), h.launch(s, &pat1))
			wantCode(t, err, tc.code)
		})
	}
}

func TestSlowEHRTimesOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{
		HTTPClient: &http.Client{Timeout: 300 * time.Millisecond}, MaxRetries: -1}, core.Issuer{})
	h.ehr.SetFaults(smarttest.Faults{Drip: 50 * time.Millisecond})
	start := time.Now()
	_, err := h.session("b").Launch(context.Background(), core.LaunchRequest{Issuer: h.ehr.FHIRBaseURL()})
	wantCode(t, err, core.CodeDiscoveryFailed)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v: the timeout did not bound the slow response", d)
	}
}

func TestCrossOriginRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request reached the other origin: %s", r.URL)
	}))
	t.Cleanup(other.Close)
	ehr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(ehr.Close)
	eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb", RedirectURL: "/",
		Issuers: []core.Issuer{{URL: ehr.URL}}, AllowInsecureHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = eng.Session("b", newMemStorage(nil)).Launch(context.Background(), core.LaunchRequest{Issuer: ehr.URL})
	wantCode(t, err, core.CodeDiscoveryFailed)
}

func TestIssuerHeadersAreSent(t *testing.T) {
	t.Parallel()
	ehr := smarttest.NewServer(smarttest.Options{})
	t.Cleanup(ehr.Close)
	ehr.RegisterClient(smarttest.Client{ID: "app"})
	seen := make(chan string, 100)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.URL.Path + " " + r.Header.Get("Epic-Client-ID")
		r2, _ := http.NewRequestWithContext(r.Context(), r.Method, ehr.URL()+r.URL.RequestURI(), r.Body)
		r2.Header = r.Header
		resp, err := http.DefaultTransport.RoundTrip(r2)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(proxy.Close)
	// The issuer is the EHR's FHIR base, reached through the proxy: only
	// discovery goes through it, and it must carry the vendor header.
	iss := proxy.URL + "/fhir"
	eng, err := core.New(core.Config{ClientID: "app", CallbackURL: "https://app.test/cb", RedirectURL: "/",
		Issuers:           []core.Issuer{{URL: iss, AuthorizationServer: ehr.AuthIssuer(), Header: http.Header{"Epic-Client-ID": {"app-123"}}}},
		AllowInsecureHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Session("b", newMemStorage(nil)).Launch(context.Background(), core.LaunchRequest{Issuer: iss}); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got != "/fhir/.well-known/smart-configuration app-123" {
		t.Fatalf("proxy saw %q", got)
	}
}
