package core_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/fhir"
	"github.com/fhirware/smart/core/smarttest"
)

// A URL outside the launch's FHIR origin (an absolute fhirUser from the
// id_token, a URL the app fetches with the launch's FHIR client's Do or
// HTTPClient) is fetched without the token, over https only unless
// AllowInsecureHTTP, and through the address guard unless
// AllowPrivateNetworks: in allowlist mode too, where the FHIR server itself
// may be on a private network.

// launchOverTLS launches the app from a fake EHR served over https, in
// allowlist mode without AllowInsecureHTTP, and returns its ReadyClient.
// The engine's HTTPClient trusts httptest's certificate; edit changes the
// Config further.
func launchOverTLS(t *testing.T, lc smarttest.LaunchContext, edit func(*core.Config)) *core.ReadyClient {
	t.Helper()
	ehr := smarttest.NewServer(smarttest.Options{TLS: true})
	t.Cleanup(ehr.Close)
	ehr.RegisterClient(smarttest.Client{ID: "app", Auth: smarttest.AuthPublic})
	cfg := core.Config{
		ClientID:    "app",
		CallbackURL: "https://app.test/callback",
		Issuers:     []core.Issuer{{URL: ehr.FHIRBaseURL()}},
		HTTPClient:  ehr.Client(),
	}
	if edit != nil {
		edit(&cfg)
	}
	eng, err := core.New(cfg)
	if err != nil {
		t.Fatalf("core.New: %v", err)
	}
	ctx := context.Background()
	authURL, err := eng.Launch(ctx, "sid-1", ehr.FHIRBaseURL(), ehr.NewLaunch(lc))
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	browser := *ehr.Client()
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := browser.Get(authURL)
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	res, err := eng.Callback(ctx, "sid-1", core.CallbackRequest{Query: loc.Query()})
	if err != nil {
		t.Fatalf("Callback: %v", err)
	}
	rc, err := eng.Ready(ctx, "sid-1", res.Handle())
	if err != nil {
		t.Fatalf("Ready: %v", err)
	}
	return rc
}

// newTLSHeaderRecorder is newHeaderRecorder over https, with httptest's
// certificate (the one smarttest's TLS server has, so the engine's client
// of launchOverTLS trusts it). It answers a Practitioner.
func newTLSHeaderRecorder(t *testing.T) *headerRecorder {
	r := &headerRecorder{}
	r.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.seen = append(r.seen, seenRequest{Method: req.Method, URL: req.URL, Header: req.Header.Clone()})
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/fhir+json")
		fmt.Fprint(w, `{"resourceType":"Practitioner","id":"remote-1"}`)
	}))
	t.Cleanup(r.Close)
	return r
}

// getUser fetches the launch's user, on another server than the launch's,
// through the launch's FHIR client's Do (its Read refuses another origin).
func getUser(rc *core.ReadyClient) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, rc.User().String(), nil)
	if err != nil {
		return err
	}
	resp, err := rc.FHIR().Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// wantNotFetched checks that fetching the launch's user failed with code
// and that the other server saw no request.
func wantNotFetched(t *testing.T, rc *core.ReadyClient, other *headerRecorder, code core.Code, msg string) {
	t.Helper()
	err := getUser(rc)
	if codeOf(err) != code {
		t.Errorf("fetching the user: %v, want %s", err, code)
	}
	if err != nil && !strings.Contains(err.Error(), msg) {
		t.Errorf("fetching the user: %q does not say %q", err, msg)
	}
	if err != nil && (strings.Contains(description(t, err), "remote-1") || strings.Contains(err.Error(), "remote-1")) {
		t.Errorf("fetching the user: the error %q names the user's id", err)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("the other server saw %d requests, want none", n)
	}
}

func TestElsewhereOverHTTPIsNotFetched(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	other := newHeaderRecorder(t) // plain http
	// AllowPrivateNetworks: only the https rule stands in the way.
	rc := launchOverTLS(t, smarttest.LaunchContext{Patient: "pat-1", FHIRUser: other.URL + "/fhir/Practitioner/remote-1"},
		func(c *core.Config) { c.AllowPrivateNetworks = true })

	wantNotFetched(t, rc, other, core.CodeInvalidRequest, "https")
	var v map[string]any
	if err := rc.FHIR().Read(ctx, other.URL+"/fhir/Practitioner/remote-1", &v); !errors.Is(err, fhir.ErrForeignReference) {
		t.Errorf("Read of an http URL elsewhere: %v, want fhir.ErrForeignReference", err)
	}
	if resp, err := rc.FHIR().HTTPClient().Get(other.URL + "/fhir/Practitioner/remote-1"); err == nil {
		resp.Body.Close()
		t.Errorf("HTTPClient().Get of an http URL elsewhere: %d, want an error", resp.StatusCode)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("the http server saw %d requests, want none", n)
	}
	// The FHIR server itself still answers.
	if err := readPatient(ctx, rc, &v); err != nil {
		t.Errorf("reading the patient on the FHIR origin: %v", err)
	}
}

func TestElsewhereOverHTTPSIsReadWithoutToken(t *testing.T) {
	t.Parallel()
	other := newTLSHeaderRecorder(t)
	rc := launchOverTLS(t, smarttest.LaunchContext{Patient: "pat-1", FHIRUser: other.URL + "/fhir/Practitioner/remote-1"},
		func(c *core.Config) { c.AllowPrivateNetworks = true })
	if err := getUser(rc); err != nil {
		t.Fatalf("fetching the user: %v", err)
	}
	seen := other.requests()
	if len(seen) != 1 || seen[0].Header.Get("Authorization") != "" {
		t.Fatalf("the user's server saw %d requests (%v), want 1 without a token", len(seen), seen)
	}
}

func TestElsewhereOnAPrivateAddressIsNotFetched(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	other := newTLSHeaderRecorder(t) // https, on 127.0.0.1
	// Allowlist mode: the configured FHIR server (on 127.0.0.1 too) is
	// reached, a URL elsewhere on a private address is not.
	rc := launchOverTLS(t, smarttest.LaunchContext{Patient: "pat-1", FHIRUser: other.URL + "/fhir/Practitioner/remote-1"}, nil)

	wantNotFetched(t, rc, other, core.CodeFHIRRequestFailed, "refused to dial")
	var v map[string]any
	if err := readPatient(ctx, rc, &v); err != nil {
		t.Errorf("reading the patient on the FHIR origin: %v", err)
	}
	if resp, err := rc.FHIR().HTTPClient().Get(other.URL + "/fhir/Practitioner/remote-1"); err == nil {
		resp.Body.Close()
		t.Errorf("HTTPClient().Get of a private address elsewhere: %d, want an error", resp.StatusCode)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("the private address saw %d requests, want none", n)
	}
}

// A Transport the address guard cannot enter (here a wrapper) still
// reaches the FHIR server in allowlist mode, and refuses URLs elsewhere
// with a message that says what to change.
func TestElsewhereThroughAnUnguardableTransportIsNotFetched(t *testing.T) {
	t.Parallel()
	other := newTLSHeaderRecorder(t)
	rc := launchOverTLS(t, smarttest.LaunchContext{Patient: "pat-1", FHIRUser: other.URL + "/fhir/Practitioner/remote-1"},
		func(c *core.Config) {
			c.HTTPClient = &http.Client{Transport: wrapper{c.HTTPClient.Transport}}
		})
	wantNotFetched(t, rc, other, core.CodeFHIRRequestFailed, "AllowPrivateNetworks")
	var v map[string]any
	if err := readPatient(context.Background(), rc, &v); err != nil {
		t.Errorf("reading the patient on the FHIR origin: %v", err)
	}
}

// wrapper is a RoundTripper that is not an *http.Transport, as a tracing
// or recording wrapper would be.
type wrapper struct{ base http.RoundTripper }

func (w wrapper) RoundTrip(req *http.Request) (*http.Response, error) { return w.base.RoundTrip(req) }
