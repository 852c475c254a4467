package attacks

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core/smarttest"
)

// checkTelemetry runs when each test of the suite ends: no span, event,
// attribute or metric attribute the engine made holds a token the EHR
// issued, a code, state, nonce or launch parameter, a launch handle, a
// cookie, or a patient, encounter or user id.
func (e *env) checkTelemetry() {
	e.t.Helper()
	defer e.otel.Shutdown()
	text, err := e.otel.Text()
	if err != nil {
		e.t.Fatalf("collecting the telemetry: %v", err)
	}
	for what, values := range e.secrets() {
		for _, v := range values {
			if strings.Contains(text, v) {
				e.t.Errorf("the engine's telemetry holds %s (%q…)", what, v[:4])
			}
		}
	}
}

// secrets returns, by kind, every secret and personal value the test's
// browsers and EHR handled: the tokens the EHR issued, the query values
// of every URL the browsers were sent to (codes, states, nonces, launch
// parameters, PKCE challenges, launch handles), the cookies the app set,
// and the sample patients', encounters' and users' ids.
func (e *env) secrets() map[string][]string {
	s := map[string][]string{
		"a token":       append(e.tok.Tokens(), e.ehr.FHIRTokens()...),
		"an id":         {"pat-1", "pat-2", "pat-3", "enc-1", "prac-1"},
		"a query value": nil,
		"a cookie":      nil,
	}
	e.mu.Lock()
	responses := append([]string(nil), e.responses...)
	e.mu.Unlock()
	for _, resp := range responses {
		head, _, _ := strings.Cut(resp, "\n\n")
		for line := range strings.SplitSeq(head, "\n") {
			raw := line
			if loc, ok := strings.CutPrefix(line, "Location: "); ok {
				raw = loc
			}
			if u, err := url.Parse(strings.TrimSpace(raw)); err == nil {
				for k, vs := range u.Query() {
					if k == "iss" || k == "aud" || k == "redirect_uri" || k == "scope" || k == "response_type" ||
						k == "client_id" || k == "code_challenge_method" {
						continue // not secret: the EHR's and the app's own addresses and names
					}
					for _, v := range vs {
						if len(v) >= 8 {
							s["a query value"] = append(s["a query value"], v)
						}
					}
				}
			}
			if c, ok := strings.CutPrefix(line, "Set-Cookie: "); ok {
				_, v, _ := strings.Cut(c, "=")
				v, _, _ = strings.Cut(v, ";")
				if len(v) >= 8 {
					s["a cookie"] = append(s["a cookie"], v)
				}
			}
		}
	}
	return s
}

// A launch, a page that reads the patient, a refresh, a FHIR request
// refused with 401 and refreshed again, and a logout, all traced and
// measured: the spans exist, and hold nothing secret (checkTelemetry).
func TestTelemetryCarriesNoSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	b := e.browser()
	page := b.complete("pat-2")
	if r := b.get(page.String()); r.StatusCode != http.StatusOK || !strings.Contains(r.body, "pat-2") {
		t.Fatalf("page: %d %s", r.StatusCode, r.body)
	}
	e.clock.Advance(2 * time.Hour) // the token expired: Ready refreshes
	if r := b.get(page.String()); r.StatusCode != http.StatusOK {
		t.Fatalf("page after expiry: %d %s", r.StatusCode, r.body)
	}
	e.ehr.ExpireAccessTokens() // the EHR refuses the token: the FHIR request refreshes
	if r := b.get(page.String()); r.StatusCode != http.StatusOK {
		t.Fatalf("page after the EHR expired the token: %d %s", r.StatusCode, r.body)
	}
	req, _ := http.NewRequest(http.MethodPost, e.url("/fhir/logout"), nil)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := e.ehr.Count(smarttest.EndpointTokenRefresh); n != 2 {
		t.Fatalf("%d refreshes, want 2", n)
	}
	e.checkNoLeaks()
	if n := e.otel.Spans(); n < 15 {
		t.Fatalf("%d spans, want the launch's, the callback's, the refreshes' and the requests'", n)
	}
	text, _ := e.otel.Text()
	for _, want := range []string{"smart.refresh", "smart.callback", "smart.logout", "smart.store.delete", "GET /fhir/Patient/{id}", "smart.fhir.request.duration"} {
		if !strings.Contains(text, want) {
			t.Errorf("the telemetry has no %s", want)
		}
	}
	sec := e.secrets()
	handle := page.Query().Get(adapters.HandleParam)
	if len(sec["a query value"]) < 3 || len(sec["a token"]) < 4 || len(sec["a cookie"]) < 1 || !slices.Contains(sec["a query value"], handle) {
		t.Errorf("the scan found too few values to look for: %d query values (the handle among them: %v), %d tokens, %d cookies",
			len(sec["a query value"]), slices.Contains(sec["a query value"], handle), len(sec["a token"]), len(sec["a cookie"]))
	}
}
