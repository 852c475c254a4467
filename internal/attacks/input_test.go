package attacks

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// phishing is text an attacker would like a page of the app to show.
const phishing = "Your session is locked. Call 555-0100"

// codeResourceNotFound is the code of the adapters' answer to a FHIR
// server's 404 or 410 (a *fhir.Error, which has no core code).
const codeResourceNotFound core.Code = "resource_not_found"

// inputAttacks lists the attacks through malformed values an EHR sends: ids, lifetimes, id_token claims, text shown on pages.
func inputAttacks() []attack {
	return []attack{
		// --- ids that are dot segments ---
		{name: "fhir_id_dot_segment", status: 400, code: core.CodeInvalidRequest, stored: 1, do: func(t *testing.T, e *env) *response {
			// An app reads a reference the user (or an EHR) chose; the
			// token must not go to the resource a dot segment climbs to.
			page := e.browser()
			app := page.complete("pat-1")
			var last *response
			for _, ref := range []string{"Observation/..", "Observation/.", "Observation/%2e%2e", e.ehr.FHIRBaseURL() + "/Observation/obs-1/../.."} {
				read := *app
				read.Path = "/fhir/read"
				q := read.Query()
				q.Set("ref", ref)
				read.RawQuery = q.Encode()
				last = page.get(read.String())
				if last.StatusCode != 400 {
					t.Errorf("reading %q: status %d, want 400", ref, last.StatusCode)
				}
			}
			return last
		}, check: noFHIRRequest},
		{name: "launch_context_patient_dot_dot", status: 200, stored: 1, do: func(t *testing.T, e *env) *response {
			// The EHR names the patient ".."; the launch keeps no patient,
			// and the app page, which reads it, gets no patient to read.
			b := e.browser()
			app := b.finish(e.launchWith(smarttest.LaunchContext{Patient: "..", FHIRUser: "Practitioner/prac-1"}))
			if page := b.get(app.String()); page.StatusCode < 400 {
				t.Errorf("the app page read a patient: %d %.200s", page.StatusCode, page.body)
			}
			ctx := *app
			ctx.Path = "/fhir/context"
			return b.get(ctx.String())
		}, check: func(t *testing.T, e *env, r *response) {
			var lc core.LaunchContext
			if err := json.Unmarshal([]byte(r.body), &lc); err != nil {
				t.Fatalf("the launch context: %v: %.200s", err, r.body)
			}
			if lc.Patient != "" {
				t.Errorf("the launch context keeps the patient %q", lc.Patient)
			}
			noFHIRRequest(t, e, r)
		}},

		// --- lifetimes ---
		{name: "token_expires_in_overflow", status: 200, stored: 1, do: func(t *testing.T, e *env) *response {
			// 10000000000 seconds overflows a time.Duration: an expiry in
			// the past would refresh on every request.
			e.ehr.SetFaults(smarttest.Faults{ExpiresIn: json.RawMessage(`10000000000`)})
			b := e.browser()
			app := b.complete("pat-1")
			b.get(app.String())
			return b.get(app.String())
		}, check: func(t *testing.T, e *env, r *response) {
			if n := e.ehr.Count(smarttest.EndpointTokenRefresh); n != 0 {
				t.Errorf("%d refreshes for two page loads with a fresh token, want 0", n)
			}
		}},

		// --- the id_token ---
		idTokenAttack("idtoken_azp_other_client", smarttest.IDTokenAzpOtherClient),
		idTokenAttack("idtoken_audiences_without_azp", smarttest.IDTokenMultipleAudiencesNoAzp),
		idTokenAttack("idtoken_missing_with_openid", smarttest.IDTokenMissing),
		idTokenAttack("idtoken_lifetime_unbounded", smarttest.IDTokenLongLived),

		// --- text meant for a page ---
		{name: "unknown_issuer_text_not_echoed", status: 403, code: core.CodeUnknownIssuer, do: func(t *testing.T, e *env) *response {
			return e.browser().get(e.url("/fhir/launch?launch=x&iss=" + url.QueryEscape("https://evil.example/"+phishing)))
		}, check: func(t *testing.T, e *env, r *response) {
			html := e.browser().get(e.url("/fhir/launch?launch=x&iss="+url.QueryEscape("https://evil.example/"+phishing)), "Accept", "text/html")
			for _, body := range []string{r.body, html.body} {
				notEchoed(t, body, "555-0100")
			}
		}},
		{name: "authorization_error_text_not_echoed", status: 403, code: core.CodeAuthorizationDenied, do: func(t *testing.T, e *env) *response {
			e.ehr.SetFaults(smarttest.Faults{AuthorizeError: "Call_555-0100_now", AuthorizeErrorDescription: phishing})
			return e.browser().follow(e.launchURL("pat-1"))
		}, check: func(t *testing.T, e *env, r *response) {
			b := e.browser()
			html := b.get(b.toCallback(e.launchURL("pat-1")).String(), "Accept", "text/html")
			for _, body := range []string{r.body, html.body} {
				notEchoed(t, body, "555-0100")
			}
		}},
		{name: "token_error_text_not_echoed", status: 502, code: core.CodeTokenExchangeFailed,
			do: faultAtCallback(smarttest.Faults{TokenError: "Call_555-0100", TokenErrorDescription: phishing}),
			check: func(t *testing.T, e *env, r *response) {
				notEchoed(t, r.body, "555-0100")
			}},
		{name: "token_type_text_not_echoed", status: 502, code: core.CodeTokenExchangeFailed, do: func(t *testing.T, e *env) *response {
			b := e.browser()
			return b.get(b.toCallback(e.launchWith(smarttest.LaunchContext{Patient: "pat-1", Extra: map[string]any{"token_type": phishing}})).String())
		}, check: func(t *testing.T, e *env, r *response) {
			notEchoed(t, r.body, "555-0100")
		}},
		{name: "fhir_outcome_text_not_echoed", status: 502, code: core.CodeFHIRRequestFailed, stored: 1,
			do: faultAtApp(smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointFHIR: http.StatusUnprocessableEntity}}, nil),
			check: func(t *testing.T, e *env, r *response) {
				notEchoed(t, r.body, "fault injected") // the OperationOutcome's diagnostics
				notEchoed(t, r.body, "pat-1")          // the id in the request's URL
			}},
		{name: "fhir_path_text_not_echoed", status: 404, code: codeResourceNotFound, stored: 1, do: func(t *testing.T, e *env) *response {
			// An app reads a reference the request names; the error page
			// names the request by FHIR's own words only, not by a path
			// segment that merely looks like a type, an operation or a
			// _parameter.
			b := e.browser()
			h := b.complete("pat-1").Query().Get(adapters.HandleParam)
			var last *response
			for _, ref := range []string{
				"$Your-EHR-session-is-locked.Call-IT-at-555-0100-now",
				"Patient/_Your_account_is_locked_call_555-0100",
				"Patient/$Call-IT-at-555-0100",
				"YourAccountIsLockedCallITAt5550100/x",
			} {
				read := e.url("/fhir/read?" + url.Values{"ref": {ref}, adapters.HandleParam: {h}}.Encode())
				html := b.get(read, "Accept", "text/html")
				last = b.get(read)
				for _, body := range []string{html.body, last.body} {
					notEchoed(t, body, "555-0100")
					notEchoed(t, body, "5550100")
				}
			}
			return last
		}},

		// --- URLs outside the FHIR server ---
		{name: "fhiruser_http_elsewhere_not_fetched", status: 400, code: core.CodeInvalidRequest, stored: 1,
			setup: setup{ehr: smarttest.Options{TLS: true}, cfg: func(e *env, c *adapters.Config) {
				c.AllowInsecureHTTP = false // the EHR is https; its fhirUser is not
				e.tok.Base = e.ehr.Client().Transport
			}},
			do: func(t *testing.T, e *env) *response {
				// The id_token names the user on another server over plain
				// http; the app reads it as a reference, which the launch's
				// FHIR client refuses for another origin, or fetches its URL
				// (rc.User().URL) with that client, as its /fetch route does.
				other, hits := otherServer(t)
				user := other + "/fhir/Practitioner/prac-1"
				b := e.browser()
				b.client.Transport = e.ehr.Client().Transport // trusts the EHR's certificate
				app := b.finish(e.launchWith(smarttest.LaunchContext{Patient: "pat-1", FHIRUser: user}))
				h := app.Query().Get(adapters.HandleParam)
				if read := b.get(e.url("/fhir/read?" + url.Values{"ref": {user}, adapters.HandleParam: {h}}.Encode())); read.StatusCode < 400 {
					t.Errorf("reading the user as a reference: %d %.200s, want a refusal", read.StatusCode, read.body)
				}
				r := b.get(e.url("/fhir/fetch?" + url.Values{"url": {user}, adapters.HandleParam: {h}}.Encode()))
				if n := hits(); n != 0 {
					t.Errorf("the http server elsewhere got %d requests", n)
				}
				return r
			}},
		{name: "fhir_read_private_address_elsewhere_not_fetched", status: 502, code: core.CodeFHIRRequestFailed, stored: 1,
			// Allowlist mode, the engine's own client: the configured FHIR
			// server is on a private address, and is reached; a URL
			// elsewhere on one is not, whether the app reads it as a
			// reference (refused as another origin's) or fetches it.
			setup: setup{defaultClient: true},
			do: func(t *testing.T, e *env) *response {
				other, hits := otherServer(t)
				b := e.browser()
				app := b.complete("pat-1")
				ref := other + "/fhir/Practitioner/prac-1"
				h := app.Query().Get(adapters.HandleParam)
				if read := b.get(e.url("/fhir/read?" + url.Values{"ref": {ref}, adapters.HandleParam: {h}}.Encode())); read.StatusCode < 400 {
					t.Errorf("reading a reference on another origin: %d %.200s, want a refusal", read.StatusCode, read.body)
				}
				r := b.get(e.url("/fhir/fetch?" + url.Values{"url": {ref}, adapters.HandleParam: {h}}.Encode()))
				if n := hits(); n != 0 {
					t.Errorf("the private address elsewhere got %d requests", n)
				}
				if !strings.Contains(e.logs.String(), "refused to dial") {
					t.Errorf("the logs do not show the address guard's refusal: %s", e.logs.String())
				}
				if page := b.get(app.String()); page.StatusCode != http.StatusOK {
					t.Errorf("the app page on the configured FHIR server: %d, want 200", page.StatusCode)
				}
				return r
			}},
	}
}

// otherServer starts an http server on 127.0.0.1, outside the EHR, that
// answers a Practitioner; it returns its URL and its request count.
func otherServer(t *testing.T) (string, func() int) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Write([]byte(`{"resourceType":"Practitioner","id":"prac-1"}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() int { return int(n.Load()) }
}

// launchWith is the EHR's launch of the app with the context lc.
func (e *env) launchWith(lc smarttest.LaunchContext) string {
	return e.url("/fhir/launch?iss=" + url.QueryEscape(e.iss) + "&launch=" + url.QueryEscape(e.ehr.NewLaunch(lc)))
}

// finish runs a whole launch from launchURL and returns the app page URL.
func (b *browser) finish(launchURL string) *url.URL {
	b.e.t.Helper()
	r := b.get(b.toCallback(launchURL).String())
	if r.StatusCode != http.StatusFound {
		b.e.t.Fatalf("callback: %d %s", r.StatusCode, r.body)
	}
	u, _ := r.Request.URL.Parse(r.Header.Get("Location"))
	return u
}

// noFHIRRequest fails when any request, and so the token, reached the FHIR
// server.
func noFHIRRequest(t *testing.T, e *env, _ *response) {
	if n := e.ehr.Count(smarttest.EndpointFHIR); n != 0 {
		t.Errorf("%d requests reached the FHIR server", n)
	}
	if n := len(e.ehr.FHIRTokens()); n != 0 {
		t.Errorf("the FHIR server received the token %d times", n)
	}
}

// notEchoed fails when a page shows text that came from the request or the
// EHR.
func notEchoed(t *testing.T, body, text string) {
	t.Helper()
	if strings.Contains(body, text) {
		t.Errorf("the page shows the untrusted text %q: %.500s", text, body)
	}
}
