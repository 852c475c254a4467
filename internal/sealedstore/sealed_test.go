// Package sealedstore_test checks Config.StoreKeys on real servers: with a
// key configured, a whole launch on Redis and on PostgreSQL leaves no token
// and no patient id readable in any value it stored; rotating to a new key
// keeps old launches and seals new ones with it; a wrong key gives a clean
// relaunch.
//
// It needs SMART_TEST_REDIS_ADDR and SMART_TEST_POSTGRES_URL (see
// internal/testservers); without them it skips, and under CI=true fails.
package sealedstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/internal/browsertest"
	"github.com/fhirware/smart/internal/testservers"
	"github.com/fhirware/smart/sessions"
	"github.com/fhirware/smart/sessions/goredislock"
	"github.com/fhirware/smart/sessions/pgxlock"
	"github.com/fhirware/smart/sessions/storagetest"
)

const clientID = "sealed-app"

// A backend is a real server with the test's part of it under prefix.
type backend struct {
	name string
	// connect returns an scs store and a locker that keep every key under
	// prefix.
	connect func(t *testing.T, prefix string) (scs.Store, core.Locker)
	// values returns every value stored under prefix, by key without it:
	// scs sessions, SMART records and locks alike.
	values func(t *testing.T, prefix string) map[string][]byte
}

func backends() []backend {
	return []backend{
		{
			name: "Redis",
			connect: func(t *testing.T, prefix string) (scs.Store, core.Locker) {
				addr := testservers.RedisAddr(t)
				testservers.DeleteRedisKeys(t, addr, "*"+prefix+"*")
				client := testservers.GoredisClient(t, addr)
				return &prefixedStore{inner: goredisstore.New(client), prefix: prefix},
					storagetest.PrefixedLocker(goredislock.New(client), prefix)
			},
			values: func(t *testing.T, prefix string) map[string][]byte {
				client := testservers.GoredisClient(t, testservers.RedisAddr(t))
				ctx := t.Context()
				out := map[string][]byte{}
				iter := client.Scan(ctx, 0, "*"+prefix+"*", 100).Iterator()
				for iter.Next(ctx) {
					v, err := client.Get(ctx, iter.Val()).Bytes()
					if err != nil {
						t.Fatalf("GET %s: %v", iter.Val(), err)
					}
					out[strings.Replace(iter.Val(), prefix, "", 1)] = v
				}
				if err := iter.Err(); err != nil {
					t.Fatal(err)
				}
				return out
			},
		},
		{
			name: "PostgreSQL",
			connect: func(t *testing.T, prefix string) (scs.Store, core.Locker) {
				url := testservers.PostgresURL(t)
				testservers.DeletePostgresRows(t, url, prefix)
				pool := testservers.PgPool(t, url)
				return &prefixedStore{inner: pgxstore.NewWithCleanupInterval(pool, 0), prefix: prefix},
					storagetest.PrefixedLocker(pgxlock.New(pool), prefix)
			},
			values: func(t *testing.T, prefix string) map[string][]byte {
				pool := testservers.PgPool(t, testservers.PostgresURL(t))
				out := map[string][]byte{}
				for _, q := range []string{
					`SELECT token, data FROM sessions WHERE starts_with(token, $1)`,
					`SELECT name, convert_to(owner, 'UTF8') FROM smart_locks WHERE starts_with(name, $1)`,
				} {
					rows, err := pool.Query(t.Context(), q, prefix)
					if err != nil {
						t.Fatal(err)
					}
					for rows.Next() {
						var k string
						var v []byte
						if err := rows.Scan(&k, &v); err != nil {
							t.Fatal(err)
						}
						out[strings.TrimPrefix(k, prefix)] = v
					}
					rows.Close()
					if err := rows.Err(); err != nil {
						t.Fatal(err)
					}
				}
				return out
			},
		},
	}
}

// TestSealedOnRealStores is acceptance point 3 of the storage work.
func TestSealedOnRealStores(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			testSealed(t, be)
		})
	}
}

func testSealed(t *testing.T, be backend) {
	prefix := testservers.UniquePrefix(t)
	store, locker := be.connect(t, prefix)
	env := newEnv(t, store, locker)
	k1, k2, k3 := newKey(), newKey(), newKey()
	records := "scs:session:" + sessions.DefaultKeyPrefix // Redis keys
	if be.name == "PostgreSQL" {
		records = sessions.DefaultKeyPrefix
	}

	// A launch with k1: nothing readable in any stored value.
	env.use(t, k1)
	if page := env.launch(t, "pat-2"); page != "patient pat-2" {
		t.Fatalf("the app page after the launch: %q", page)
	}
	secrets := append(env.tokens.seen(), "pat-2")
	if len(secrets) < 4 {
		t.Fatalf("recorded %d secrets, want an access, refresh and id token and the patient id", len(secrets))
	}
	stored := be.values(t, prefix)
	sealedWith := wantSealed(t, stored, records, secrets, k1)
	var oldLaunches []string
	for _, k := range sealedWith[string(keyID(k1))] {
		if strings.HasPrefix(k, "launch:") {
			oldLaunches = append(oldLaunches, k)
		}
	}
	if len(oldLaunches) != 1 {
		t.Fatalf("%d launch records sealed with the first key among %d values, want 1", len(oldLaunches), len(stored))
	}

	// Rotation: k2 seals, k1 still opens. The old launch is usable; a new
	// one is sealed with k2; the old record, not written since, keeps k1.
	env.use(t, k2, k1)
	if page := env.get(t, "/fhir/"); page != "patient pat-2" {
		t.Fatalf("after rotation, the old launch: %q", page)
	}
	if page := env.launch(t, "pat-1"); page != "patient pat-1" {
		t.Fatalf("a launch after rotation: %q", page)
	}
	sealedWith = wantSealed(t, be.values(t, prefix), records, append(env.tokens.seen(), "pat-1", "pat-2"), k2, k1)
	for _, k := range oldLaunches {
		if !contains(sealedWith[string(keyID(k1))], k) {
			t.Errorf("the old launch %s is not sealed with the old key any more", k)
		}
	}
	var newSealed int
	for _, k := range sealedWith[string(keyID(k2))] {
		if strings.HasPrefix(k, "launch:") {
			newSealed++
		}
	}
	if newSealed != 1 {
		t.Errorf("%d launch records sealed with the new key, want 1", newSealed)
	}

	// A wrong key: the ready path answers 401 no_launch, and a new launch
	// works.
	env.use(t, k3)
	status, body := env.getStatus(t, "/fhir/", "application/json")
	if status != http.StatusUnauthorized || !strings.Contains(body, "no_launch") {
		t.Fatalf("with a wrong key: %d %s", status, body)
	}
	if page := env.launch(t, "pat-1"); page != "patient pat-1" {
		t.Fatalf("a relaunch with the new key: %q", page)
	}
}

// wantSealed checks that every SMART record among stored is sealed with
// one of keys, and that no value holds a secret. It returns the records'
// keys by the key id they are sealed with.
func wantSealed(t *testing.T, stored map[string][]byte, records string, secrets []string, keys ...core.Secret) map[string][]string {
	t.Helper()
	ids := map[string]bool{}
	for _, k := range keys {
		ids[string(keyID(k))] = true
	}
	by := map[string][]string{}
	var n int
	for k, v := range stored {
		for _, s := range secrets {
			if bytes.Contains(v, []byte(s)) {
				t.Errorf("%s holds a token or the patient id in clear", k)
			}
		}
		rec, ok := strings.CutPrefix(k, records)
		if !ok || !engineRecord(rec) {
			continue // an scs session, a lock, or a sessions forward (no token in it)
		}
		n++
		if len(v) < 5 || v[0] != 0x01 || !ids[string(v[1:5])] {
			t.Errorf("record %s is not sealed with a configured key", rec)
			continue
		}
		by[string(v[1:5])] = append(by[string(v[1:5])], rec)
	}
	if n == 0 {
		t.Fatalf("no SMART record among the %d stored values", len(stored))
	}
	return by
}

// engineRecord reports whether a record's key is one the engine writes,
// and seals: pending launches, launch records and the session's lists.
func engineRecord(key string) bool {
	for _, p := range []string{"pending:", "launch:", "pendings:", "launches:"} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// newKey returns a store key as Config.StoreKeys takes it: 32 random bytes
// in standard base64.
func newKey() core.Secret {
	k := make([]byte, 32)
	rand.Read(k)
	return core.Secret(base64.StdEncoding.EncodeToString(k))
}

// keyID is the key id a sealed value names, as core/seal.go documents it:
// a hash of the key's bytes.
func keyID(key core.Secret) []byte {
	b, err := base64.StdEncoding.DecodeString(string(key))
	if err != nil {
		panic(err)
	}
	h := sha256.Sum256(append([]byte("fhirware/smart store key\x00"), b...))
	return h[:4]
}

// env is a fake EHR and one app address whose instance the test replaces
// (each with its own keys) while the store and the browser stay.
type env struct {
	ehr     *smarttest.Server
	app     *httptest.Server
	handler atomic.Pointer[http.Handler]
	store   scs.Store
	locker  core.Locker
	tokens  *tokenRecorder
	browser *http.Client
}

func newEnv(t *testing.T, store scs.Store, locker core.Locker) *env {
	e := &env{store: store, locker: locker, tokens: &tokenRecorder{}}
	e.ehr = smarttest.NewServer(smarttest.Options{})
	t.Cleanup(e.ehr.Close)
	e.ehr.RegisterClient(smarttest.Client{ID: clientID})
	e.app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*e.handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(e.app.Close)
	e.browser = browsertest.New()
	t.Cleanup(e.browser.CloseIdleConnections)
	return e
}

// use replaces the app instance by one with keys.
func (e *env) use(t *testing.T, keys ...core.Secret) {
	t.Helper()
	sm := scs.New()
	sm.Store = e.store
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	s, err := adapters.New(adapters.Config{
		Config: core.Config{
			ClientID:          clientID,
			CallbackURL:       e.app.URL + "/fhir/callback",
			Issuers:           []core.Issuer{{URL: e.ehr.FHIRBaseURL()}},
			AllowInsecureHTTP: true,
			StoreKeys:         keys,
			HTTPClient:        &http.Client{Transport: &recordingTransport{base: tr, rec: e.tokens}},
			Locker:            e.locker,
		},
		SessionManager: sm, // its store keeps the SMART records too: Storage is nil
		RedirectURL:    "/fhir/",
		Cookies:        sessions.CookieInsecureHTTP,
	})
	if err != nil {
		t.Fatal(err)
	}
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "patient "+adapters.FromContext(r.Context()).Patient().ID)
	})
	mux := http.NewServeMux()
	mux.Handle("/fhir/", http.StripPrefix("/fhir", s.Handler(page)))
	var h http.Handler = mux
	e.handler.Store(&h)
}

// launch runs an EHR launch for patient in the browser and returns the
// app page it lands on.
func (e *env) launch(t *testing.T, patient string) string {
	t.Helper()
	page, err := browsertest.Launch(t.Context(), e.browser, e.ehr.EHRLaunchURL(e.app.URL+"/fhir/launch", smarttest.LaunchContext{Patient: patient}))
	if err != nil {
		t.Fatal(err)
	}
	return e.get(t, page.String())
}

func (e *env) get(t *testing.T, u string) string {
	t.Helper()
	status, body := e.getStatus(t, u, "")
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", u, status, body)
	}
	return body
}

func (e *env) getStatus(t *testing.T, u, accept string) (int, string) {
	t.Helper()
	if strings.HasPrefix(u, "/") {
		u = e.app.URL + u
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := e.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// tokenRecorder keeps every token the EHR's token endpoint hands out.
type tokenRecorder struct {
	mu     sync.Mutex
	tokens []string
}

func (r *tokenRecorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.tokens...)
}

type recordingTransport struct {
	base http.RoundTripper
	rec  *tokenRecorder
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rt.base.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.URL.Path, "/token") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var tr struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
		ID      string `json:"id_token"`
	}
	_ = json.Unmarshal(body, &tr)
	rt.rec.mu.Lock()
	for _, s := range []string{tr.Access, tr.Refresh, tr.ID} {
		if s != "" {
			rt.rec.tokens = append(rt.rec.tokens, s)
		}
	}
	rt.rec.mu.Unlock()
	return resp, nil
}

// prefixedStore keeps an scs store's keys under prefix, so that tests
// sharing a server stay apart.
type prefixedStore struct {
	inner  scs.Store
	prefix string
}

func (s *prefixedStore) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

func (s *prefixedStore) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

func (s *prefixedStore) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

func (s *prefixedStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	if cs, ok := s.inner.(scs.CtxStore); ok {
		return cs.FindCtx(ctx, s.prefix+token)
	}
	return s.inner.Find(s.prefix + token)
}

func (s *prefixedStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	if cs, ok := s.inner.(scs.CtxStore); ok {
		return cs.CommitCtx(ctx, s.prefix+token, b, expiry)
	}
	return s.inner.Commit(s.prefix+token, b, expiry)
}

func (s *prefixedStore) DeleteCtx(ctx context.Context, token string) error {
	if cs, ok := s.inner.(scs.CtxStore); ok {
		return cs.DeleteCtx(ctx, s.prefix+token)
	}
	return s.inner.Delete(s.prefix + token)
}
