package core_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/internal/testclock"
)

// memStorage is a core.Storage in a map, honouring TTLs against a clock.
type memStorage struct {
	mu   sync.Mutex
	now  func() time.Time
	data map[string]memEntry
	fail error // when set, every call fails with it

	onGet     func(key string) // when set, called (without the lock) before each Get
	afterRead func(key string) // when set, called (without the lock) after each Get has read
}

type memEntry struct {
	b   []byte
	exp time.Time
}

func newMemStorage(now func() time.Time) *memStorage {
	if now == nil {
		now = time.Now
	}
	return &memStorage{now: now, data: map[string]memEntry{}}
}

func (m *memStorage) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	hook := m.onGet
	m.mu.Unlock()
	if hook != nil {
		hook(key)
	}
	m.mu.Lock()
	if m.fail != nil {
		m.mu.Unlock()
		return nil, m.fail
	}
	e, ok := m.data[key]
	found := ok && m.now().Before(e.exp)
	after := m.afterRead
	m.mu.Unlock()
	if after != nil {
		after(key)
	}
	if !found {
		return nil, core.ErrNotFound
	}
	return append([]byte(nil), e.b...), nil
}

func (m *memStorage) Set(_ context.Context, key string, v []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.data[key] = memEntry{b: append([]byte(nil), v...), exp: m.now().Add(ttl)}
	return nil
}

func (m *memStorage) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	delete(m.data, key)
	return nil
}

func (m *memStorage) setOnGet(f func(key string)) {
	m.mu.Lock()
	m.onGet = f
	m.mu.Unlock()
}

func (m *memStorage) setFail(err error) {
	m.mu.Lock()
	m.fail = err
	m.mu.Unlock()
}

func (m *memStorage) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.data)
}

// harness is a fake EHR, an engine configured for it and its storage.
type harness struct {
	t     testing.TB
	ehr   *smarttest.Server
	eng   *core.Engine
	store *memStorage
	clock *testclock.Clock
}

// newHarness starts smarttest with opts, registers client, and builds an
// engine with cfg completed for that EHR, over the harness's store.
// cfg.Issuers, when empty, lists the EHR with issuer's settings.
func newHarness(t testing.TB, opts smarttest.Options, client smarttest.Client, cfg core.Config, issuer core.Issuer) *harness {
	t.Helper()
	c := testclock.New()
	if opts.Now == nil {
		opts.Now = c.Now
	}
	ehr := smarttest.NewServer(opts)
	t.Cleanup(ehr.Close)
	if client.ID == "" {
		client.ID = "app"
	}
	ehr.RegisterClient(client)
	if cfg.ClientID == "" {
		cfg.ClientID = client.ID
	}
	if cfg.CallbackURL == "" {
		cfg.CallbackURL = "http://app.test/fhir/callback"
	}
	if cfg.Now == nil {
		cfg.Now = c.Now
	}
	if len(cfg.Issuers) == 0 && !cfg.AllowAnyIssuer {
		issuer.URL = ehr.FHIRBaseURL()
		cfg.Issuers = []core.Issuer{issuer}
	}
	cfg.AllowInsecureHTTP = true
	store := newMemStorage(c.Now)
	cfg.Storage = store
	eng, err := core.New(cfg)
	if err != nil {
		t.Fatalf("core.New: %v", err)
	}
	return &harness{t: t, ehr: ehr, eng: eng, store: store, clock: c}
}

// noRedirect is an HTTP client that hands back redirects instead of
// following them.
var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

// authorize follows an authorize URL to the EHR and returns the callback
// request it redirects the browser with.
func authorize(t testing.TB, authURL string) core.CallbackRequest {
	t.Helper()
	cb, err := authorizeErr(authURL)
	if err != nil {
		t.Fatal(err)
	}
	return cb
}

// authorizeErr is authorize for goroutines, which must not call t.Fatal.
func authorizeErr(authURL string) (core.CallbackRequest, error) {
	resp, err := noRedirect.Get(authURL)
	if err != nil {
		return core.CallbackRequest{}, fmt.Errorf("authorize: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return core.CallbackRequest{}, fmt.Errorf("authorize: status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return core.CallbackRequest{}, fmt.Errorf("authorize: Location: %w", err)
	}
	return core.CallbackRequest{Query: loc.Query()}, nil
}

// launch runs an EHR launch for lc (standalone when lc is nil) in the
// browser whose id is browser, and returns its callback request.
func (h *harness) launch(browser string, lc *smarttest.LaunchContext) core.CallbackRequest {
	h.t.Helper()
	launch := ""
	if lc != nil {
		launch = h.ehr.NewLaunch(*lc)
	}
	authURL, err := h.eng.Launch(context.Background(), browser, h.ehr.FHIRBaseURL(), launch)
	if err != nil {
		h.t.Fatalf("Launch: %v", err)
	}
	return authorize(h.t, authURL)
}

// complete runs launch and callback in the browser and returns the
// launch's client.
func (h *harness) complete(browser string, lc *smarttest.LaunchContext) *core.ReadyClient {
	h.t.Helper()
	rc, err := h.eng.Callback(context.Background(), browser, h.launch(browser, lc))
	if err != nil {
		h.t.Fatalf("Callback: %v", err)
	}
	return rc
}

// codeOf returns the Code of the first *core.Error in err's chain, or "".
func codeOf(err error) core.Code {
	var e *core.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func wantCode(t testing.TB, err error, code core.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	if !strings.Contains(err.Error(), "smart: ") {
		t.Errorf("error %q lacks the package prefix", err)
	}
	if got := codeOf(err); got != code {
		t.Fatalf("got code %q (%v), want %s", got, err, code)
	}
}
