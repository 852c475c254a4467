package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/fhirware/smart/core"
)

// anyHostEHR is a hostile EHR that answers for any host name: the one
// server behind a wildcard DNS record, so that every launch may name an
// issuer of a host never seen before. It serves a SMART configuration
// with endpoints on the request's host, a token endpoint that grants any
// code (and a refresh token), a Patient read that refuses the first
// token and takes the refreshed one, and an Observation search whose next
// page is at /fhir/JaneDoe.
func anyHostEHR(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		base := "http://" + r.Host
		switch {
		case r.URL.Path == "/fhir/.well-known/smart-configuration":
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{
				"authorization_endpoint":                         base + "/authorize",
				"token_endpoint":                                 base + "/token",
				"capabilities":                                   []string{"launch-ehr", "client-public"},
				"code_challenge_methods_supported":               []string{"S256"},
				"authorization_response_iss_parameter_supported": true,
			})
		case r.URL.Path == "/token":
			// The first token is refused by the FHIR server; the
			// refreshed one is not.
			token := "first"
			if r.PostFormValue("grant_type") == "refresh_token" {
				token = "refreshed"
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{
				"access_token": token, "refresh_token": "rt", "token_type": "Bearer", "expires_in": 3600,
				"scope": "launch patient/*.read", "patient": "p1",
			})
		case r.URL.Path == "/fhir/Patient/p1" && r.Header.Get("Authorization") != "Bearer refreshed":
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/fhir/Observation":
			// The next page's path is the server's own text, shaped as
			// a resource type.
			w.Header().Set("Content-Type", "application/fhir+json")
			fmt.Fprintf(w, `{"resourceType":"Bundle","type":"searchset","link":[{"relation":"next","url":"%s/fhir/JaneDoe?page=2"}]}`, base)
		case r.URL.Path == "/fhir/JaneDoe":
			w.Header().Set("Content-Type", "application/fhir+json")
			w.Write([]byte(`{"resourceType":"Bundle","type":"searchset"}`))
		case r.URL.Path == "/fhir/Patient/p1":
			w.Header().Set("Content-Type", "application/fhir+json")
			w.Write([]byte(`{"resourceType":"Patient","id":"p1"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// dialTo is an HTTP client whose every connection goes to addr, whatever
// the host the request names: a wildcard DNS record.
func dialTo(addr string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}, Timeout: 10 * time.Second}
}

// launchFrom launches the app from iss in browser, the EHR granting any
// code, and returns the launch's client.
func launchFrom(t *testing.T, eng *core.Engine, browser, iss string) *core.ReadyClient {
	t.Helper()
	ctx := context.Background()
	authURL, err := eng.Launch(ctx, browser, iss, "l")
	if err != nil {
		t.Fatalf("Launch %s: %v", iss, err)
	}
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := eng.Callback(ctx, browser, core.CallbackRequest{Query: url.Values{
		"code": {"c"}, "state": {u.Query().Get("state")}, "iss": {iss}}})
	if err != nil {
		t.Fatalf("Callback %s: %v", iss, err)
	}
	return rc
}

// issuerValues returns, for each metric that has the smart.issuer
// attribute, the distinct values it has.
func issuerValues(rm metricdata.ResourceMetrics) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	add := func(name string, set attribute.Set) {
		if v, ok := set.Value("smart.issuer"); ok {
			if out[name] == nil {
				out[name] = map[string]bool{}
			}
			out[name][v.AsString()] = true
		}
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					add(m.Name, p.Attributes)
				}
			}
		}
	}
	return out
}

// With AllowAnyIssuer, anyone who owns a wildcard DNS record can launch
// the app from endless issuer hosts. Each must not become a metric
// attribute value of its own: an SDK keeps every attribute set it has
// seen (2,000 by default, then everything, the configured issuers' points
// too, lands in one overflow point), and a metrics backend bills every
// series. Only configured issuers are named by host; the others are
// "_OTHER".
func TestTelemetryMetricsBoundIssuersOfAllowAnyIssuer(t *testing.T) {
	t.Parallel()
	ehr := anyHostEHR(t)
	addr := ehr.Listener.Addr().String()
	otelSDK := newOtelSDK(t)
	cfg := core.Config{
		ClientID: "app", CallbackURL: "https://app.test/cb",
		Scope:          "launch patient/*.read offline_access",
		AllowAnyIssuer: true, AllowInsecureHTTP: true, AllowPrivateNetworks: true,
		HTTPClient: dialTo(addr),
		Issuers:    []core.Issuer{{URL: "http://configured.test/fhir"}},
	}
	otelSDK.configure(&cfg)
	eng, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const hosts = 20
	for i := range hosts + 1 {
		iss := fmt.Sprintf("http://ehr-%d.evil.test/fhir", i)
		if i == hosts {
			iss = "http://configured.test/fhir"
		}
		rc := launchFrom(t, eng, fmt.Sprintf("b%d", i), iss)
		var p map[string]any
		if err := rc.FHIR().Read(ctx, rc.Patient().String(), &p); err != nil {
			t.Fatalf("Read %s: %v", iss, err)
		}
	}
	got := issuerValues(otelSDK.metrics(t))
	for _, name := range []string{"smart.launches", "smart.callbacks", "smart.refreshes", "smart.fhir.request.duration"} {
		want := map[string]bool{"configured.test": true, "_OTHER": true}
		if fmt.Sprint(got[name]) != fmt.Sprint(want) {
			t.Errorf("%s: smart.issuer values %v, want %v", name, got[name], want)
		}
	}
}

// A FHIR server's text in a path segment shaped as a resource type (a
// next link to /fhir/JaneDoe) is not a resource type, and stays out of
// span names and URL templates as any id does: only FHIR's own resource
// types are kept.
func TestTelemetryURLTemplateKeepsOnlyResourceTypes(t *testing.T) {
	t.Parallel()
	ehr := anyHostEHR(t)
	otelSDK := newOtelSDK(t)
	cfg := core.Config{
		ClientID: "app", CallbackURL: "https://app.test/cb",
		Scope:             "launch patient/*.read",
		AllowInsecureHTTP: true,
		HTTPClient:        dialTo(ehr.Listener.Addr().String()),
		Issuers:           []core.Issuer{{URL: "http://ehr.test/fhir"}},
	}
	otelSDK.configure(&cfg)
	eng, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rc := launchFrom(t, eng, "b", "http://ehr.test/fhir")
	for _, err := range rc.FHIR().Search(context.Background(), "Observation", nil) {
		if err != nil {
			t.Fatal(err)
		}
	}
	pages := 0
	for _, sp := range otelSDK.spans.Ended() {
		if v, ok := attr(sp, "url.template"); ok && strings.HasPrefix(v.AsString(), "/fhir/") && !strings.Contains(v.AsString(), "Observation") {
			pages++
			if sp.Name() != "GET /fhir/{id}" || v.AsString() != "/fhir/{id}" {
				t.Errorf("the next page's span is %q with url.template %q, want GET /fhir/{id}", sp.Name(), v.AsString())
			}
		}
		if strings.Contains(fmt.Sprint(sp.Name(), sp.Attributes(), sp.Events()), "JaneDoe") {
			t.Errorf("span %q holds the server's text: %v", sp.Name(), sp.Attributes())
		}
	}
	if pages != 1 {
		t.Errorf("%d spans of the next page, want 1", pages)
	}
}
