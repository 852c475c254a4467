package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/fhir"
	"github.com/fhirware/smart/core/smarttest"
)

// Malformed values an EHR (or a request) sends: ids that are dot
// segments, absurd lifetimes, id_token claims, text meant for a page.

// description returns err's Description, failing when err is not an
// *core.Error.
func description(t *testing.T, err error) string {
	t.Helper()
	var e *core.Error
	if !errors.As(err, &e) {
		t.Fatalf("%v is not a *core.Error", err)
	}
	return e.Description
}

// readyFor completes a launch of lc and returns its ReadyClient.
func (h *harness) readyFor(lc smarttest.LaunchContext) *core.ReadyClient {
	h.t.Helper()
	res := h.complete("browser-1", &lc)
	rc, err := h.eng.Ready(context.Background(), "browser-1", res.Handle())
	if err != nil {
		h.t.Fatalf("Ready: %v", err)
	}
	return rc
}

// launches counts the finished launches stored.
func (m *memStorage) launches() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k := range m.data {
		if strings.HasPrefix(k, "launch:") {
			n++
		}
	}
	return n
}

func TestDotSegmentIDsAreLeftOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	rc := h.readyFor(smarttest.LaunchContext{Patient: "..", Encounter: ".", FHIRUser: "Practitioner/.."})
	lc := rc.LaunchContext()
	if lc.Patient != "" || lc.Encounter != "" || !lc.User.IsZero() {
		t.Errorf("a dot segment was kept in the launch context: patient %q, encounter %q, user %+v", lc.Patient, lc.Encounter, lc.User)
	}
	if !rc.Patient().IsZero() || !rc.Encounter().IsZero() || !rc.User().IsZero() {
		t.Error("a ContextRef was made of a dot segment")
	}
	var v json.RawMessage
	wantFHIRStatus(t, readPatient(context.Background(), rc, &v), 0) // refused: there is no patient
	if n := h.ehr.Count(smarttest.EndpointFHIR); n != 0 {
		t.Errorf("%d requests reached the FHIR server", n)
	}
}

// A reference with a dot segment, or one that climbs out of the FHIR base
// or names another host, never takes the launch's token anywhere: the
// launch's client refuses it before any request (the authorization
// server's key set, say, is on the FHIR server's origin).
func TestDotSegmentReferencesAreRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	rc := h.readyFor(smarttest.LaunchContext{Patient: "pat-1"})
	ctx := context.Background()
	base := h.ehr.FHIRBaseURL()
	c := rc.FHIR()
	h.ehr.ResetCounts()
	for _, ref := range []string{
		"Observation/..", "Observation/.", "Observation/%2e%2e", "Observation/%2E.", "Observation\\..",
		"Observation/../Patient/pat-1", "./Observation/obs-1", "Observation/../../admin",
		base + "/Observation/..", base + "/Patient/pat-1/../../../admin", base + "/%2e%2e/admin",
		"Patient/pat-1/_history/..", "../auth/jwks", "Patient/../../auth/jwks", "//evil.example/fhir/Patient/1", "Patient/%zz",
	} {
		var v json.RawMessage
		wantFHIRStatus(t, c.Read(ctx, ref, &v), 0)
		_, err := c.Update(ctx, ref, map[string]any{"resourceType": "Observation"})
		wantFHIRStatus(t, err, 0)
		_, err = c.Patch(ctx, ref, []fhir.PatchOp{{Op: "remove", Path: "/status"}})
		wantFHIRStatus(t, err, 0)
		wantFHIRStatus(t, c.Delete(ctx, ref), 0)
	}
	if n := h.ehr.Count(smarttest.EndpointFHIR) + h.ehr.Count(smarttest.EndpointJWKS); n != 0 {
		t.Errorf("%d requests reached the EHR", n)
	}
	if toks := h.ehr.FHIRTokens(); len(toks) != 0 {
		t.Errorf("the FHIR server received the token %d times", len(toks))
	}
	// An id with dots that is not a dot segment is still an id.
	var v json.RawMessage
	if err := c.Read(ctx, "Patient/..pat", &v); !errors.Is(err, fhir.ErrNotFound) {
		t.Errorf("Read(Patient/..pat): %v, want not found from the server", err)
	}
}

func TestExpiresIn(t *testing.T) {
	t.Parallel()
	const maxLifetime = 30 * 24 * time.Hour // the longest lifetime an access token is taken to have
	for _, tc := range []struct {
		expiresIn string
		want      time.Duration // 0: no expiry
	}{
		{`3600`, time.Hour},
		{`10000000000`, maxLifetime},
		{`9223372036854775807`, maxLifetime},
		{`1e400`, maxLifetime},
		{`2592001`, maxLifetime},
		{`3600.9`, time.Hour},
		{`"3600"`, time.Hour},
		{`0`, 0},
		{`-10000000000`, 0},
		{`-1e400`, 0},
		{`0.5`, 0},
		{`null`, 0},
	} {
		t.Run(tc.expiresIn, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
			h.ehr.SetFaults(smarttest.Faults{ExpiresIn: json.RawMessage(tc.expiresIn)})
			res := h.complete("browser-1", &smarttest.LaunchContext{Patient: "pat-1"})
			got := res.LaunchContext().Expiry
			if tc.want == 0 && !got.IsZero() || tc.want != 0 && !got.Equal(h.clock.Now().Add(tc.want)) {
				t.Errorf("expiry %v after now, want %v", got.Sub(h.clock.Now()), tc.want)
			}
			for range 2 {
				if _, err := h.eng.Ready(context.Background(), "browser-1", res.Handle()); err != nil {
					t.Fatal(err)
				}
			}
			if n := h.ehr.Count(smarttest.EndpointTokenRefresh); n != 0 {
				t.Errorf("%d refreshes for a fresh token", n)
			}
		})
	}
}

func TestIDTokenClaimsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault smarttest.IDTokenFault
	}{
		{"azp names another client", smarttest.IDTokenAzpOtherClient},
		{"several audiences, no azp", smarttest.IDTokenMultipleAudiencesNoAzp},
		{"missing though openid was granted", smarttest.IDTokenMissing},
		{"valid for years, no iat", smarttest.IDTokenLongLived},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
			h.ehr.SetFaults(smarttest.Faults{IDToken: tc.fault})
			_, err := h.eng.Callback(context.Background(), "browser-1", h.launch("browser-1", &smarttest.LaunchContext{Patient: "pat-1"}))
			wantCode(t, err, core.CodeInvalidIDToken)
			if n := h.store.launches(); n != 0 {
				t.Errorf("%d launches stored after a refused callback", n)
			}
		})
	}
}

func TestIDTokenLifetimeBound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		lifetime time.Duration
		ok       bool
	}{
		{time.Hour, true},
		{24 * time.Hour, true}, // the most an id_token may be valid for
		{24*time.Hour + time.Minute, false},
		{365 * 24 * time.Hour, false},
	} {
		t.Run(tc.lifetime.String(), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, smarttest.Options{IDTokenLifetime: tc.lifetime}, smarttest.Client{}, core.Config{}, core.Issuer{})
			_, err := h.eng.Callback(context.Background(), "browser-1", h.launch("browser-1", &smarttest.LaunchContext{Patient: "pat-1"}))
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok {
				wantCode(t, err, core.CodeInvalidIDToken)
			}
		})
	}
}

// TestIDTokenRequiredWhenOpenIDGranted checks the rule of the Callback
// docs: the granted scope is the response's, or the requested one when the
// response names none; openid in it requires an id_token.
func TestIDTokenRequiredWhenOpenIDGranted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		scope string         // Config.Scope; "" for the default, with openid
		extra map[string]any // token response fields replaced
		ok    bool
	}{
		{"granted scope names openid", "", nil, false},
		{"no scope in the response, openid requested", "", map[string]any{"scope": nil}, false},
		{"granted scope leaves openid out", "", map[string]any{"scope": "launch patient/*.read"}, true},
		{"openid not requested", "launch patient/*.read", nil, true},
		{"no scope in the response, openid not requested", "launch patient/*.read", map[string]any{"scope": nil}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{Scope: tc.scope}, core.Issuer{})
			h.ehr.SetFaults(smarttest.Faults{IDToken: smarttest.IDTokenMissing})
			_, err := h.eng.Callback(context.Background(), "browser-1", h.launch("browser-1", &smarttest.LaunchContext{Patient: "pat-1", Extra: tc.extra}))
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok {
				wantCode(t, err, core.CodeInvalidIDToken)
				if !strings.Contains(err.Error(), "granted openid but sent no id_token") {
					t.Errorf("error %q does not say why", err)
				}
			}
		})
	}
}

// phishing is text an attacker would like a page of the app to show.
const phishing = "Your session is locked. Call 555-0100"

// TestNoUntrustedTextInDescriptions checks that the Description of an
// error (what pages show) carries no text of the request's or the EHR's,
// while the error's message (for logs) keeps it.
func TestNoUntrustedTextInDescriptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	check := func(t *testing.T, err error, code core.Code, wantInDesc string) {
		t.Helper()
		wantCode(t, err, code)
		desc := description(t, err)
		if strings.Contains(desc, "555-0100") || strings.Contains(desc, "Call") {
			t.Errorf("the Description carries untrusted text: %q", desc)
		}
		if !strings.Contains(desc, wantInDesc) {
			t.Errorf("Description %q lacks %q", desc, wantInDesc)
		}
		if !strings.Contains(err.Error(), "555-0100") {
			t.Errorf("the message (for logs) lost the text: %q", err)
		}
		if strings.ContainsAny(err.Error(), "\r\n") {
			t.Errorf("the message carries control characters: %q", err)
		}
	}
	newH := func(t *testing.T) *harness {
		return newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	}

	t.Run("unknown issuer", func(t *testing.T) {
		t.Parallel()
		h := newH(t)
		iss := "https://evil.example/" + phishing
		_, err := h.eng.Discover(ctx, iss)
		check(t, err, core.CodeUnknownIssuer, "not one of the configured issuers")
		_, err = h.eng.Launch(ctx, "browser-1", iss, "x")
		check(t, err, core.CodeUnknownIssuer, "not one of the configured issuers")
	})
	for _, tc := range []struct{ code, want string }{
		{"Call_555-0100", "the EHR refused the authorization"},
		{"access_denied\r\nCall 555-0100", "the EHR refused the authorization"},
		{"access_denied", "the EHR refused the authorization: access_denied"},
	} {
		t.Run("authorization error "+tc.code, func(t *testing.T) {
			t.Parallel()
			h := newH(t)
			h.ehr.SetFaults(smarttest.Faults{AuthorizeError: tc.code, AuthorizeErrorDescription: phishing + "\r\n"})
			_, err := h.eng.Callback(ctx, "browser-1", h.launch("browser-1", &smarttest.LaunchContext{Patient: "pat-1"}))
			check(t, err, core.CodeAuthorizationDenied, tc.want)
		})
	}
	for _, tc := range []struct{ code, want string }{
		{"Call_555-0100", "the token endpoint answered 400"},
		{"invalid_grant", "the token endpoint answered 400 invalid_grant"},
	} {
		t.Run("token error "+tc.code, func(t *testing.T) {
			t.Parallel()
			h := newH(t)
			h.ehr.SetFaults(smarttest.Faults{TokenError: tc.code, TokenErrorDescription: phishing})
			_, err := h.eng.Callback(ctx, "browser-1", h.launch("browser-1", &smarttest.LaunchContext{Patient: "pat-1"}))
			check(t, err, core.CodeTokenExchangeFailed, tc.want)
		})
	}
	t.Run("token type", func(t *testing.T) {
		t.Parallel()
		h := newH(t)
		_, err := h.eng.Callback(ctx, "browser-1", h.launch("browser-1", &smarttest.LaunchContext{Patient: "pat-1", Extra: map[string]any{"token_type": phishing}}))
		check(t, err, core.CodeTokenExchangeFailed, "not a Bearer token")
	})
	// A failed FHIR request of the launch is a *fhir.Error, whose message
	// names the request by method and resource type: never an id.
	t.Run("FHIR OperationOutcome", func(t *testing.T) {
		t.Parallel()
		h := newH(t)
		rc := h.readyFor(smarttest.LaunchContext{Patient: "pat-1"})
		h.ehr.SetFaults(smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointFHIR: http.StatusUnprocessableEntity}})
		var v json.RawMessage
		err := readPatient(ctx, rc, &v)
		wantFHIRStatus(t, err, http.StatusUnprocessableEntity)
		if strings.Contains(err.Error(), "pat-1") {
			t.Errorf("the message names the patient: %q", err)
		}
		if !strings.Contains(err.Error(), "fault injected") {
			t.Errorf("the message (for logs) lost the server's words: %q", err)
		}
	})
	t.Run("FHIR request ids", func(t *testing.T) {
		t.Parallel()
		h := newH(t)
		rc := h.readyFor(smarttest.LaunchContext{Patient: "pat-1"})
		for ref, status := range map[string]int{
			"Observation/secret-id-1/_history/2": http.StatusNotFound,
			"Observation/secret-id-1":            http.StatusNotFound,
			"https://elsewhere.test/secret-id-1": 0,
		} {
			var v json.RawMessage
			err := rc.FHIR().Read(ctx, ref, &v)
			wantFHIRStatus(t, err, status)
			if strings.Contains(err.Error(), "secret-id-1") {
				t.Errorf("Read(%q): the message names the id: %q", ref, err)
			}
		}
	})
}
