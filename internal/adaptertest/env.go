package adaptertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/internal/browsertest"
	"github.com/fhirware/smart/internal/leakcheck"
	"github.com/fhirware/smart/sessions"
)

// clientID is the app's client id at the fake EHR.
const clientID = "adaptertest-app"

// env is one app under test with its own fake EHR. It records every
// response the browsers see, every log line and every token the EHR
// issues, and checks when the test ends that no response or log line holds
// a token.
type env struct {
	t   *testing.T
	ehr *smarttest.Server
	app *httptest.Server
	cfg adapters.Config

	logs   leakcheck.Buffer
	tokens leakcheck.TokenRecorder

	mu         sync.Mutex
	transcript strings.Builder // every response: status, headers, body
}

// newEnv starts a fake EHR and the app mounted by r, with the default
// configuration changed by tweak.
func newEnv(t *testing.T, r Router, tweak func(*adapters.Config)) *env {
	t.Helper()
	e := &env{t: t}
	e.ehr = smarttest.NewServer(smarttest.Options{})
	t.Cleanup(e.ehr.Close)
	e.ehr.RegisterClient(smarttest.Client{ID: clientID})

	e.app = httptest.NewUnstartedServer(nil)
	t.Cleanup(e.app.Close)
	base := "http://" + e.app.Listener.Addr().String()

	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	e.tokens.Base = tr
	logger := slog.New(slog.NewJSONHandler(&e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The app's own manager, as an app that keeps values of its own in the
	// session has: made as the adapters would, with the one store-error
	// recipe.
	sm := sessions.New(nil, sessions.WithCookies(sessions.CookieInsecureHTTP), sessions.WithLogger(logger)).SessionManager()
	e.cfg = adapters.Config{
		Config: core.Config{
			ClientID:          clientID,
			CallbackURL:       base + "/fhir/callback",
			Issuers:           []core.Issuer{{URL: e.ehr.FHIRBaseURL()}},
			AllowInsecureHTTP: true,
			HTTPClient:        &http.Client{Transport: &e.tokens, Timeout: 10 * time.Second},
			Logger:            logger,
		},
		SessionManager: sm,
		RedirectURL:    "/fhir/api/patient",
		Cookies:        sessions.CookieInsecureHTTP,
	}
	if tweak != nil {
		tweak(&e.cfg)
	}
	e.app.Config.Handler = r.Mount(t, e.cfg)
	e.app.Start()
	t.Cleanup(e.checkNoTokens)
	return e
}

// url returns the app's URL for path.
func (e *env) url(path string) string { return e.app.URL + path }

// ehrLaunch returns the URL the EHR opens to launch the app with lc.
func (e *env) ehrLaunch(lc smarttest.LaunchContext) string {
	return e.ehr.EHRLaunchURL(e.url("/fhir/launch"), lc)
}

func (e *env) record(format string, args ...any) {
	e.mu.Lock()
	fmt.Fprintf(&e.transcript, format, args...)
	e.mu.Unlock()
}

// checkNoTokens fails the test if a response the browsers saw, or a log
// line, holds a token the EHR issued.
func (e *env) checkNoTokens() {
	e.mu.Lock()
	seen := e.transcript.String()
	e.mu.Unlock()
	logs := e.logs.String()
	for _, tok := range append(e.tokens.Tokens(), e.ehr.FHIRTokens()...) {
		if len(tok) < 8 {
			continue
		}
		if strings.Contains(seen, tok) {
			e.t.Errorf("a response to the browser holds a token issued by the EHR")
		}
		if strings.Contains(logs, tok) {
			e.t.Errorf("a log line holds a token issued by the EHR")
		}
	}
}

// browser is a user agent with its own cookie jar that follows no
// redirect by itself, so that every response is seen.
type browser struct {
	e      *env
	client *http.Client
}

func (e *env) browser() *browser {
	c := browsertest.New()
	e.t.Cleanup(c.CloseIdleConnections)
	return &browser{e: e, client: c}
}

// response is a recorded response.
type response struct {
	status int
	header http.Header
	body   string
}

// location returns the response's Location, resolved against base.
func (r *response) location(t *testing.T, base string) *url.URL {
	t.Helper()
	loc := r.header.Get("Location")
	if loc == "" {
		t.Fatalf("status %d without Location; body: %.300s", r.status, r.body)
	}
	b, _ := url.Parse(base)
	u, err := b.Parse(loc)
	if err != nil {
		t.Fatalf("Location %q: %v", loc, err)
	}
	return u
}

// cookie returns the response's Set-Cookie for name, or nil.
func (r *response) cookie(name string) *http.Cookie {
	for _, line := range r.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err == nil && c.Name == name {
			return c
		}
	}
	return nil
}

// do sends a request; header holds name, value pairs.
func (b *browser) do(method, rawURL string, header ...string) *response {
	t := b.e.t
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, rawURL, err)
	}
	r := &response{status: resp.StatusCode, header: resp.Header, body: string(body)}
	var hdr bytes.Buffer
	resp.Header.Write(&hdr)
	b.e.record("%s %s\n%d\n%s\n%s\n\n", method, rawURL, r.status, hdr.String(), body)
	return r
}

func (b *browser) get(rawURL string, header ...string) *response {
	b.e.t.Helper()
	return b.do(http.MethodGet, rawURL, header...)
}

// expect fails the test unless r has the status.
func expect(t *testing.T, r *response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body: %.500s", r.status, status, r.body)
	}
}

// redirect gets rawURL, which must answer with a redirect, and returns
// where it points.
func (b *browser) redirect(rawURL string) *url.URL {
	t := b.e.t
	t.Helper()
	r := b.get(rawURL)
	expect(t, r, http.StatusFound)
	return r.location(t, rawURL)
}

// startLaunch opens the app's launch URL and returns the authorize URL it
// redirects to.
func (b *browser) startLaunch(launchURL string) *url.URL {
	b.e.t.Helper()
	return b.redirect(launchURL)
}

// authorize follows the authorize redirect at the EHR and returns the
// callback URL the EHR redirects back to.
func (b *browser) authorize(u *url.URL) *url.URL {
	b.e.t.Helper()
	return b.redirect(u.String())
}

// callback follows the redirect to the app's callback and returns the app
// URL it redirects to.
func (b *browser) callback(u *url.URL) *url.URL {
	b.e.t.Helper()
	return b.redirect(u.String())
}

// launch makes a whole EHR launch with lc and returns the app URL the
// callback sends the browser to.
func (b *browser) launch(lc smarttest.LaunchContext) *url.URL {
	b.e.t.Helper()
	return b.callback(b.authorize(b.startLaunch(b.e.ehrLaunch(lc))))
}

// patient gets an app URL answered by Patient.
func (b *browser) patient(rawURL string, header ...string) PatientAnswer {
	t := b.e.t
	t.Helper()
	r := b.get(rawURL, header...)
	expect(t, r, http.StatusOK)
	var a PatientAnswer
	if err := json.Unmarshal([]byte(r.body), &a); err != nil {
		t.Fatalf("%s: %v; body: %.300s", rawURL, err, r.body)
	}
	return a
}
