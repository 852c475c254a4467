package attacks

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/go-chi/chi/v5"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/chiware"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/internal/browsertest"
	"github.com/fhirware/smart/internal/leakcheck"
	"github.com/fhirware/smart/internal/testclock"
	"github.com/fhirware/smart/sessions"
)

// env is one app (chi, mounted at /fhir) and one fake EHR.
type env struct {
	t     *testing.T
	ehr   *smarttest.Server
	app   *httptest.Server
	cfg   core.Config // the engine's configuration, with its defaults
	store *memstore.MemStore
	clock *testclock.Clock
	logs  *leakcheck.Buffer
	tok   *leakcheck.TokenRecorder
	otel  *leakcheck.Telemetry // the engine's spans and metrics (checkTelemetry)
	iss   string               // the issuer the EHR launches the app with

	mu        sync.Mutex
	responses []string // every response the browsers saw: status, headers, body
}

// setup shapes an env before the app is built.
type setup struct {
	ehr smarttest.Options
	// cfg edits the adapter's config; its Issuers start as the EHR.
	cfg func(e *env, c *adapters.Config)
	// defaultClient leaves core.Config.HTTPClient unset, so the engine's
	// own default client (with its address guard) is used; tokens are then
	// not recorded.
	defaultClient bool
	// refusedByNew is the error code with which the app's New must refuse
	// the configuration; the row then ends there, as a pass.
	refusedByNew core.Code
}

func newEnv(t *testing.T, s setup) *env {
	t.Helper()
	e := &env{t: t, clock: testclock.New(), logs: &leakcheck.Buffer{}, store: memstore.NewWithCleanupInterval(0)}
	if s.ehr.Now == nil {
		s.ehr.Now = e.clock.Now
	}
	e.ehr = smarttest.NewServer(s.ehr)
	t.Cleanup(e.ehr.Close)
	e.ehr.RegisterClient(smarttest.Client{ID: "app"})
	e.iss = e.ehr.FHIRBaseURL()

	e.app = httptest.NewUnstartedServer(nil)
	base := "http://" + e.app.Listener.Addr().String()
	sm := scs.New()
	sm.Store = e.store
	e.tok = &leakcheck.TokenRecorder{}
	cfg := adapters.Config{
		Config: core.Config{
			ClientID:          "app",
			CallbackURL:       base + "/fhir/callback",
			Issuers:           []core.Issuer{{URL: e.ehr.FHIRBaseURL()}},
			AllowInsecureHTTP: true,
			Now:               e.clock.Now,
			Logger:            slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		},
		SessionManager: sm,
		Cookies:        sessions.CookieInsecureHTTP,
		RedirectURL:    base + "/fhir/",
	}
	if !s.defaultClient {
		cfg.HTTPClient = &http.Client{Transport: e.tok, Timeout: 5 * time.Second}
	}
	e.otel = leakcheck.NewTelemetry()
	cfg.TracerProvider, cfg.MeterProvider = e.otel.TracerProvider, e.otel.MeterProvider
	t.Cleanup(e.checkTelemetry)
	if s.cfg != nil {
		s.cfg(e, &cfg)
	}
	router, err := chiware.New(cfg)
	if s.refusedByNew != "" {
		if !errors.Is(err, s.refusedByNew) {
			t.Fatalf("chiware.New accepted a configuration it must refuse with %s (err %v)", s.refusedByNew, err)
		}
		t.Logf("refused: %v", err)
		return nil
	}
	if err != nil {
		t.Fatalf("chiware.New: %v", err)
	}
	e.cfg = router.Engine().Config()
	router.Get("/", func(w http.ResponseWriter, r *http.Request) {
		rc := chiware.ReadyClient(r)
		var p struct {
			ID   string `json:"id"`
			Name []struct {
				Family string `json:"family"`
			} `json:"name"`
		}
		if err := rc.FHIR().Read(r.Context(), rc.Patient().String(), &p); err != nil {
			chiware.Error(w, r, err)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"patient": p.ID})
	})
	// /context answers the launch context, as the EHR gave it and the
	// engine kept it.
	router.Get("/context", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(chiware.ReadyClient(r).LaunchContext())
	})
	// /read reads the reference its ref parameter names, as an app that
	// reads what the user asks for would.
	router.Get("/read", func(w http.ResponseWriter, r *http.Request) {
		var v json.RawMessage
		if err := chiware.ReadyClient(r).FHIR().Read(r.Context(), r.URL.Query().Get("ref"), &v); err != nil {
			chiware.Error(w, r, err)
			return
		}
		w.Write(v)
	})
	// /fetch gets the absolute URL its url parameter names through the
	// launch's FHIR client, as an app fetching a fhirUser on another
	// server (rc.User().URL) does: the launch's transport decides what
	// goes out.
	router.Get("/fetch", func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, r.URL.Query().Get("url"), nil)
		if err == nil {
			var resp *http.Response
			if resp, err = chiware.ReadyClient(r).FHIR().Do(req); err == nil {
				defer resp.Body.Close()
				w.WriteHeader(resp.StatusCode)
				io.Copy(w, io.LimitReader(resp.Body, 1<<20))
				return
			}
		}
		chiware.Error(w, r, err)
	})
	mux := chi.NewRouter()
	mux.Mount("/fhir", router)
	e.app.Config.Handler = mux
	e.app.Start()
	t.Cleanup(e.app.Close)
	return e
}

func (e *env) url(path string) string { return e.app.URL + path }

// launchURL is the EHR's launch of the app for a patient.
func (e *env) launchURL(patient string) string {
	id := e.ehr.NewLaunch(smarttest.LaunchContext{Patient: patient, FHIRUser: "Practitioner/prac-1"})
	return e.url("/fhir/launch?iss=" + url.QueryEscape(e.iss) + "&launch=" + url.QueryEscape(id))
}

// launchRecords counts the finished launches in the store.
func (e *env) launchRecords() int {
	all, err := e.store.All()
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for k := range all {
		if strings.HasPrefix(k, "smart:launch:") {
			n++
		}
	}
	return n
}

// browser is a cookie jar that follows no redirect by itself, so every
// response is seen (and recorded for the leak checks).
type browser struct {
	e      *env
	client *http.Client
}

func (e *env) browser() *browser {
	c := browsertest.New()
	e.t.Cleanup(c.CloseIdleConnections)
	return &browser{e: e, client: c}
}

type response struct {
	*http.Response
	body string
}

// get requests rawURL; header is name, value pairs.
func (b *browser) get(rawURL string, header ...string) *response {
	b.e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.e.t.Fatalf("GET %s: %v", rawURL, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var h bytes.Buffer
	resp.Header.Write(&h)
	b.e.mu.Lock()
	b.e.responses = append(b.e.responses, rawURL+"\n"+resp.Status+"\n"+h.String()+"\n"+string(body))
	b.e.mu.Unlock()
	return &response{Response: resp, body: string(body)}
}

// follow requests rawURL and follows redirects by hand until a non-redirect
// answer, returning it.
func (b *browser) follow(rawURL string) *response {
	b.e.t.Helper()
	for range 10 {
		r := b.get(rawURL)
		if r.StatusCode < 300 || r.StatusCode > 399 {
			return r
		}
		loc, err := r.Request.URL.Parse(r.Header.Get("Location"))
		if err != nil {
			b.e.t.Fatal(err)
		}
		rawURL = loc.String()
	}
	b.e.t.Fatal("too many redirects")
	return nil
}

// toCallback runs the launch and the authorize step and returns the
// callback URL the EHR redirects to, without requesting it.
func (b *browser) toCallback(launchURL string) *url.URL {
	b.e.t.Helper()
	r := b.get(launchURL)
	if r.StatusCode != http.StatusFound {
		b.e.t.Fatalf("launch: %d %s", r.StatusCode, r.body)
	}
	r = b.get(r.Header.Get("Location"))
	if r.StatusCode != http.StatusFound {
		b.e.t.Fatalf("authorize: %d %s", r.StatusCode, r.body)
	}
	u, _ := url.Parse(r.Header.Get("Location"))
	return u
}

// complete runs a whole launch and returns the app page URL.
func (b *browser) complete(patient string) *url.URL {
	b.e.t.Helper()
	cb := b.toCallback(b.e.launchURL(patient))
	r := b.get(cb.String())
	if r.StatusCode != http.StatusFound {
		b.e.t.Fatalf("callback: %d %s", r.StatusCode, r.body)
	}
	u, _ := r.Request.URL.Parse(r.Header.Get("Location"))
	return u
}

// errorCode reads the JSON error body's code.
func (r *response) errorCode() core.Code {
	var body struct {
		Error string `json:"error"`
	}
	json.Unmarshal([]byte(r.body), &body)
	return core.Code(body.Error)
}

// checkNoLeaks fails when a token the EHR issued appears in a response,
// header, cookie, redirect or log line, or a patient id in a URL of the app.
func (e *env) checkNoLeaks() {
	e.t.Helper()
	e.mu.Lock()
	seen := strings.Join(e.responses, "\n")
	e.mu.Unlock()
	logs := e.logs.String()
	tokens := append(e.tok.Tokens(), e.ehr.FHIRTokens()...)
	for _, tok := range tokens {
		if strings.Contains(seen, tok) {
			e.t.Errorf("a token the EHR issued appears in a response the browser saw")
		}
		if strings.Contains(logs, tok) {
			e.t.Errorf("a token the EHR issued appears in the logs")
		}
	}
	for _, resp := range e.responses {
		head, _, _ := strings.Cut(resp, "\n\n")
		for line := range strings.SplitSeq(head, "\n") {
			if strings.HasPrefix(line, "Location: "+e.app.URL) || strings.HasPrefix(line, e.app.URL) {
				for _, p := range []string{"pat-1", "pat-2", "pat-3"} {
					if strings.Contains(line, p) {
						e.t.Errorf("a patient id appears in one of the app's URLs: %s", line)
					}
				}
			}
		}
	}
}
