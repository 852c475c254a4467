package core_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/fhir"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/internal/testclock"
)

// seenRequest is a request as the fake EHR's HTTP server received it.
type seenRequest struct {
	Method string
	URL    *url.URL
	Header http.Header
}

// fhirEnv is a fake EHR served through a request recorder, an engine
// configured for it, and one finished launch.
type fhirEnv struct {
	ehr     *smarttest.Server
	base    string // the FHIR base URL
	eng     *core.Engine
	store   *memStorage
	clock   *testclock.Clock
	browser string // the browser's id
	handle  string
	rc      *core.ReadyClient

	mu   sync.Mutex
	seen []seenRequest
}

// fhirSetup changes the defaults of launchForFHIR.
type fhirSetup struct {
	ehr    smarttest.Options
	config func(*core.Config)
	launch smarttest.LaunchContext // default: pat-1, enc-1, Practitioner/prac-1
	quiet  bool                    // do not record requests (benchmarks)
}

// launchForFHIR starts a fake EHR, launches the app from it (launch,
// authorize, callback) and returns the env with its ReadyClient.
func launchForFHIR(t testing.TB, setup fhirSetup) *fhirEnv {
	t.Helper()
	c := testclock.New()
	env := &fhirEnv{clock: c, store: newMemStorage(c.Now), browser: "sid-1"}
	opts := setup.ehr
	if opts.Now == nil {
		opts.Now = env.clock.Now
	}
	env.ehr = smarttest.NewUnstarted(opts)
	h := env.ehr.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !setup.quiet {
			env.mu.Lock()
			env.seen = append(env.seen, seenRequest{Method: r.Method, URL: r.URL, Header: r.Header.Clone()})
			env.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { env.ehr.Close(); srv.Close() })
	env.base = srv.URL + "/fhir"
	env.ehr.RegisterClient(smarttest.Client{ID: "app", Auth: smarttest.AuthPublic})

	cfg := core.Config{
		ClientID:          "app",
		CallbackURL:       "http://app.test/callback",
		Issuers:           []core.Issuer{{URL: env.base}},
		AllowInsecureHTTP: true,
		Now:               env.clock.Now,
		Storage:           env.store,
	}
	if setup.config != nil {
		setup.config(&cfg)
	}
	eng, err := core.New(cfg)
	if err != nil {
		t.Fatalf("core.New: %v", err)
	}
	env.eng = eng

	lc := setup.launch
	if lc.Patient == "" && lc.FHIRUser == "" {
		lc = smarttest.LaunchContext{Patient: "pat-1", Encounter: "enc-1", FHIRUser: "Practitioner/prac-1"}
	}
	ctx := context.Background()
	authURL, err := eng.Launch(ctx, env.browser, env.base, env.ehr.NewLaunch(lc))
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	code, state, err := authorizeForFHIR(authURL)
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.Callback(ctx, env.browser, core.CallbackRequest{Query: url.Values{"code": {code}, "state": {state}}})
	if err != nil {
		t.Fatalf("Callback: %v", err)
	}
	env.handle = res.Handle()
	if env.rc, err = eng.Ready(ctx, env.browser, env.handle); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	return env
}

// authorizeForFHIR follows an authorize URL without following the redirect
// back to the app, and returns the code and state it carries.
func authorizeForFHIR(authURL string) (code, state string, err error) {
	c := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	resp, err := c.Get(authURL)
	if err != nil {
		return "", "", err
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		return "", "", fmt.Errorf("authorize: status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	q := loc.Query()
	if q.Get("code") == "" {
		return "", "", fmt.Errorf("authorize: no code in %s", loc.Redacted())
	}
	return q.Get("code"), q.Get("state"), nil
}

// requests returns the requests the EHR received whose path is path.
func (env *fhirEnv) requests(path string) []seenRequest {
	env.mu.Lock()
	defer env.mu.Unlock()
	var out []seenRequest
	for _, r := range env.seen {
		if r.URL.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// ready returns a new ReadyClient for the env's launch, as the next app
// request would get.
func (env *fhirEnv) ready(t testing.TB) *core.ReadyClient {
	t.Helper()
	rc, err := env.eng.Ready(context.Background(), env.browser, env.handle)
	if err != nil {
		t.Fatalf("Ready: %v", err)
	}
	return rc
}

// headerRecorder is a second origin that records the requests it gets.
type headerRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

func newHeaderRecorder(t testing.TB) *headerRecorder {
	r := &headerRecorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.seen = append(r.seen, seenRequest{Method: req.Method, URL: req.URL, Header: req.Header.Clone()})
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/fhir+json")
		fmt.Fprint(w, `{"resourceType":"Bundle","type":"searchset"}`)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *headerRecorder) requests() []seenRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seenRequest(nil), r.seen...)
}

// fhirPatient is a shape the tests decode into: the app's own, not a FHIR
// model.
type fhirPatient struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Gender       string `json:"gender"`
	BirthDate    string `json:"birthDate"`
	Meta         struct {
		VersionID string `json:"versionId"`
	} `json:"meta"`
}

// readPatient reads the launch's patient through its FHIR client.
func readPatient(ctx context.Context, rc *core.ReadyClient, v any) error {
	return rc.FHIR().Read(ctx, rc.Patient().String(), v)
}

// wantFHIRStatus checks that err is a *fhir.Error with the FHIR server's
// status (0: no answer, such as a request refused before it was sent).
func wantFHIRStatus(t testing.TB, err error, status int) *fhir.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want a *fhir.Error with status %d", status)
	}
	var e *fhir.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *fhir.Error", err, err)
	}
	if e.StatusCode != status {
		t.Fatalf("got status %d (%v), want %d", e.StatusCode, err, status)
	}
	return e
}

// wantOneToken checks that the EHR's FHIR server saw n requests with a
// token, all with the same one: the one new token of a single refresh.
func wantOneToken(t testing.TB, ehr *smarttest.Server, n int) {
	t.Helper()
	tokens := ehr.FHIRTokens()
	if len(tokens) != n {
		t.Fatalf("the FHIR server saw %d requests with a token, want %d", len(tokens), n)
	}
	for _, tok := range tokens {
		if tok != tokens[0] {
			t.Fatal("the requests carried different tokens; want the one new token")
		}
	}
}

// atOnce runs call(i) for i in [0, n) in n goroutines released together,
// waits for them all, and fails the test with each error.
func atOnce(t testing.TB, n int, call func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			if err := call(i); err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
