package smarttest_test

import (
	"net/http"
	"testing"

	"github.com/fhirware/smart/core/smarttest"
)

type authorizeCase struct {
	name      string
	kv        []string // authorization request overrides
	status    int      // 302 or 400
	wantError string   // error on the redirect, "" for a code
}

func (tc authorizeCase) run(t *testing.T, s *smarttest.Server) {
	t.Parallel()
	q := authParams(s, "app", newPKCE(), tc.kv...)
	status, cb := authorize(t, s, q)
	if status != tc.status {
		t.Fatalf("status %d, want %d", status, tc.status)
	}
	if status != http.StatusFound {
		return
	}
	if cb.Get("error") != tc.wantError {
		t.Fatalf("error = %q (%s), want %q", cb.Get("error"), cb.Get("error_description"), tc.wantError)
	}
	if tc.wantError == "" && cb.Get("code") == "" {
		t.Fatal("no code")
	}
	if cb.Get("state") != "state-1" {
		t.Errorf("state = %q", cb.Get("state"))
	}
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	s.RegisterClient(smarttest.Client{ID: "strict", RedirectURIs: []string{"http://other.example/cb"}})
	launch := s.NewLaunch(smarttest.LaunchContext{Patient: "pat-3"})
	for _, tc := range []authorizeCase{
		{name: "standalone", status: 302},
		{name: "ehr launch", kv: []string{"launch", launch}, status: 302},
		{name: "unknown launch", kv: []string{"launch", "nope"}, status: 302, wantError: "invalid_request"},
		{name: "unknown client", kv: []string{"client_id", "nobody"}, status: 400},
		{name: "unregistered redirect", kv: []string{"client_id", "strict"}, status: 400},
		{name: "relative redirect", kv: []string{"redirect_uri", "/callback"}, status: 400},
		{name: "no challenge", kv: []string{"code_challenge", ""}, status: 302, wantError: "invalid_request"},
		{name: "plain method", kv: []string{"code_challenge_method", "plain"}, status: 302, wantError: "invalid_request"},
		{name: "no method", kv: []string{"code_challenge_method", ""}, status: 302, wantError: "invalid_request"},
		{name: "wrong aud", kv: []string{"aud", "https://elsewhere.example/fhir"}, status: 302, wantError: "invalid_request"},
		{name: "aud is the issuer", kv: []string{"aud", s.AuthIssuer()}, status: 302, wantError: "invalid_request"},
		{name: "response_type token", kv: []string{"response_type", "token"}, status: 302, wantError: "unsupported_response_type"},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, s) })
	}
}

func TestAuthorizeEHRLaunchContext(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{StandaloneContext: smarttest.LaunchContext{Patient: "pat-2", FHIRUser: "Patient/pat-2"}})
	u := s.EHRLaunchURL("https://app.example/launch?tenant=a", smarttest.LaunchContext{Patient: "pat-3", Encounter: "enc-4"})
	launchURL, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := launchURL.URL.Query()
	if q.Get("iss") != s.FHIRBaseURL() || q.Get("tenant") != "a" || q.Get("launch") == "" {
		t.Fatalf("launch URL %s", u)
	}
	tok := login(t, s, "launch", q.Get("launch"))
	if tok["patient"] != "pat-3" || tok["encounter"] != "enc-4" {
		t.Errorf("EHR launch context: patient %v encounter %v", tok["patient"], tok["encounter"])
	}
	tok = login(t, s)
	if tok["patient"] != "pat-2" {
		t.Errorf("standalone patient %v, want pat-2", tok["patient"])
	}
	claims, err := verifyIDToken(t, s, str(tok["id_token"]))
	if err != nil || claims["fhirUser"] != "Patient/pat-2" {
		t.Errorf("standalone fhirUser %v (%v)", claims["fhirUser"], err)
	}
}

func TestAuthorizeResponseIss(t *testing.T) {
	t.Parallel()
	on := start(t, smarttest.Options{AuthorizationResponseIss: true})
	_, cb := authorize(t, on, authParams(on, "app", newPKCE()))
	if cb.Get("iss") != on.AuthIssuer() {
		t.Errorf("iss = %q, want %q", cb.Get("iss"), on.AuthIssuer())
	}
	off := start(t, smarttest.Options{})
	_, cb = authorize(t, off, authParams(off, "app", newPKCE()))
	if cb.Has("iss") {
		t.Errorf("iss = %q without AuthorizationResponseIss", cb.Get("iss"))
	}
	off.SetFaults(smarttest.Faults{WrongCallbackIss: true})
	_, cb = authorize(t, off, authParams(off, "app", newPKCE()))
	if cb.Get("iss") == "" || cb.Get("iss") == off.AuthIssuer() {
		t.Errorf("WrongCallbackIss: iss = %q", cb.Get("iss"))
	}
}

func TestAuthorizeErrorFault(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	s.SetFaults(smarttest.Faults{AuthorizeError: "access_denied", AuthorizeErrorDescription: "user said no"})
	_, cb := authorize(t, s, authParams(s, "app", newPKCE()))
	if cb.Get("error") != "access_denied" || cb.Get("error_description") != "user said no" || cb.Has("code") {
		t.Errorf("callback %v", cb)
	}
	if cb.Get("state") != "state-1" {
		t.Errorf("state %q", cb.Get("state"))
	}
}
