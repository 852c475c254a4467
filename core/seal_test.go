package core_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// tokenRecorder is an HTTP transport that keeps every token the EHR's
// token endpoint hands out, so a test can look for them in the store.
type tokenRecorder struct {
	mu     sync.Mutex
	tokens []string
}

func (r *tokenRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
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
	r.mu.Lock()
	for _, t := range []string{tr.Access, tr.Refresh, tr.ID} {
		if t != "" {
			r.tokens = append(r.tokens, t)
		}
	}
	r.mu.Unlock()
	return resp, nil
}

func (r *tokenRecorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.tokens...)
}

// newStoreKey returns a new store key: 32 random bytes in standard base64,
// as Config.StoreKeys takes them.
func newStoreKey(t testing.TB) core.Secret {
	k := make([]byte, 32)
	rand.Read(k)
	return core.Secret(base64.StdEncoding.EncodeToString(k))
}

// keyID is the key id a sealed value names (see core/seal.go).
func keyID(t testing.TB, key core.Secret) []byte {
	t.Helper()
	k, err := base64.StdEncoding.DecodeString(string(key))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(append([]byte("fhirware/smart store key\x00"), k...))
	return h[:4]
}

// sealHarness is a harness whose engine seals with keys and records the
// tokens it receives.
func sealHarness(t *testing.T, keys ...core.Secret) (*harness, *tokenRecorder) {
	t.Helper()
	rec := &tokenRecorder{}
	h := newHarness(t, smarttest.Options{}, smarttest.Client{},
		core.Config{StoreKeys: keys, HTTPClient: &http.Client{Transport: rec}}, core.Issuer{})
	return h, rec
}

// withKeys is another engine, on the same EHR, clock and store, with other
// keys.
func (h *harness) withKeys(t *testing.T, keys ...core.Secret) *core.Engine {
	t.Helper()
	cfg := h.eng.Config()
	cfg.StoreKeys = keys
	e, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// stored returns a copy of every value in the store, by key.
func (m *memStorage) stored() map[string][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][]byte, len(m.data))
	for k, e := range m.data {
		out[k] = bytes.Clone(e.b)
	}
	return out
}

func (m *memStorage) put(key string, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.data[key]
	e.b = b
	m.data[key] = e
}

// TestStoreKeysConfig: each of StoreKeys must be 32 bytes in standard
// base64; New refuses any other, naming the field and never the key.
func TestStoreKeysConfig(t *testing.T) {
	t.Parallel()
	base := core.Config{ClientID: "app", CallbackURL: "https://app.test/cb",
		Issuers: []core.Issuer{{URL: "https://ehr.test/fhir"}}}
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xa7}, n)) }
	for name, bad := range map[string]string{
		"empty":              "",
		"16 bytes":           b64(16),
		"31 bytes":           b64(31),
		"33 bytes":           b64(33),
		"64 bytes":           b64(64),
		"32 bytes unencoded": strings.Repeat("p", 32),
		"base64url":          base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)),
		"not base64":         "this is not base64 at all, it is a password!",
	} {
		cfg := base
		cfg.StoreKeys = []core.Secret{newStoreKey(t), core.Secret(bad)}
		_, err := core.New(cfg)
		wantCode(t, err, core.CodeInvalidConfig)
		if !strings.Contains(err.Error(), "Config.StoreKeys[1]") {
			t.Errorf("%s: error %q does not name the field", name, err)
		}
		if len(bad) >= 4 && strings.Contains(err.Error(), bad[:4]) {
			t.Errorf("%s: error %q shows the key", name, err)
		}
	}
	// The engine keeps a copy: the caller's slice may change.
	k := newStoreKey(t)
	keys := []core.Secret{k}
	cfg := base
	cfg.StoreKeys = keys
	e, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	keys[0] = newStoreKey(t)
	if e.Config().StoreKeys[0] != k {
		t.Error("the engine shares the caller's key slice")
	}
}

// TestSealedAtRest: with StoreKeys, every value the engine stores is
// sealed, and no token nor the patient id is readable in any of them.
func TestSealedAtRest(t *testing.T) {
	t.Parallel()
	key := newStoreKey(t)
	h, rec := sealHarness(t, key)
	cb := h.launch("sid-1", &smarttest.LaunchContext{Patient: "pat-1", FHIRUser: "Practitioner/prac-1"})
	for k, v := range h.store.stored() {
		if v[0] != 0x01 || !bytes.Equal(v[1:5], keyID(t, key)) {
			t.Errorf("pending state: %s is not sealed with the key", k)
		}
	}
	res, err := h.eng.Callback(context.Background(), "sid-1", cb)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := h.eng.Ready(context.Background(), "sid-1", res.Handle())
	if err != nil {
		t.Fatal(err)
	}
	if rc.Patient().ID != "pat-1" {
		t.Fatalf("patient %q", rc.Patient().ID)
	}
	tokens := rec.seen()
	if len(tokens) < 3 {
		t.Fatalf("recorded %d tokens, want access, refresh and id tokens", len(tokens))
	}
	stored := h.store.stored()
	if len(stored) == 0 {
		t.Fatal("nothing stored")
	}
	for k, v := range stored {
		if v[0] != 0x01 || !bytes.Equal(v[1:5], keyID(t, key)) {
			t.Errorf("%s is not sealed with the key", k)
		}
		for _, secret := range append(tokens, "pat-1", "prac-1") {
			if bytes.Contains(v, []byte(secret)) {
				t.Errorf("%s holds a token or id in clear", k)
			}
		}
	}
}

// TestSealBoundToKey: a sealed launch record copied under another launch's
// key does not open: the request is answered as a missing launch.
func TestSealBoundToKey(t *testing.T) {
	t.Parallel()
	h, _ := sealHarness(t, newStoreKey(t))
	a := h.complete("sid-1", &smarttest.LaunchContext{Patient: "pat-1"})
	b := h.complete("sid-1", &smarttest.LaunchContext{Patient: "pat-2"})
	stored := h.store.stored()
	h.store.put("launch:"+b.Handle(), stored["launch:"+a.Handle()])
	_, err := h.eng.Ready(context.Background(), "sid-1", b.Handle())
	wantUnsealable(t, err, core.CodeNoLaunch)
	if rc, err := h.eng.Ready(context.Background(), "sid-1", a.Handle()); err != nil || rc.Patient().ID != "pat-1" {
		t.Fatalf("the original record: %v", err)
	}
}

// TestSealTampered: a sealed record changed in the store, at any byte, does
// not open; nor does one cut short. Each gives a clean relaunch.
func TestSealTampered(t *testing.T) {
	t.Parallel()
	h, _ := sealHarness(t, newStoreKey(t))
	res := h.complete("sid-1", &smarttest.LaunchContext{Patient: "pat-1"})
	key := "launch:" + res.Handle()
	orig := h.store.stored()[key]
	for _, i := range []int{0, 1, 4, 5, 16, 17, len(orig) / 2, len(orig) - 1} {
		b := bytes.Clone(orig)
		b[i] ^= 0x01
		h.store.put(key, b)
		_, err := h.eng.Ready(context.Background(), "sid-1", res.Handle())
		wantUnsealable(t, err, core.CodeNoLaunch)
	}
	for _, n := range []int{0, 1, 5, 32, len(orig) - 1} {
		h.store.put(key, bytes.Clone(orig[:n]))
		_, err := h.eng.Ready(context.Background(), "sid-1", res.Handle())
		wantCode(t, err, core.CodeNoLaunch)
	}
	h.store.put(key, orig)
	if _, err := h.eng.Ready(context.Background(), "sid-1", res.Handle()); err != nil {
		t.Fatalf("the original record: %v", err)
	}
}

// TestSealRotation: with a new key put first, launches sealed with the old
// one stay usable, new records are sealed with the new key, and an old
// record is sealed anew when it is next written (a refresh). Once the old
// key is removed, its records give a clean relaunch.
func TestSealRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := newStoreKey(t), newStoreKey(t)
	h, _ := sealHarness(t, oldKey)
	old := h.complete("sid-1", &smarttest.LaunchContext{Patient: "pat-1"})
	oldRecord := "launch:" + old.Handle()
	if id := h.store.stored()[oldRecord][1:5]; !bytes.Equal(id, keyID(t, oldKey)) {
		t.Fatal("the first launch is not sealed with the old key")
	}

	rotated := h.withKeys(t, newKey, oldKey)
	rc, err := rotated.Ready(context.Background(), "sid-1", old.Handle())
	if err != nil || rc.Patient().ID != "pat-1" {
		t.Fatalf("after rotation, the old launch: %v", err)
	}
	authURL, err := rotated.Launch(context.Background(), "sid-1", h.ehr.FHIRBaseURL(), h.ehr.NewLaunch(smarttest.LaunchContext{Patient: "pat-2"}))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := rotated.Callback(context.Background(), "sid-1", authorize(t, authURL))
	if err != nil {
		t.Fatal(err)
	}
	stored := h.store.stored()
	if id := stored["launch:"+fresh.Handle()][1:5]; !bytes.Equal(id, keyID(t, newKey)) {
		t.Error("a launch after rotation is not sealed with the new key")
	}
	if id := stored[oldRecord][1:5]; !bytes.Equal(id, keyID(t, oldKey)) {
		t.Error("the old launch changed without being written")
	}

	// A refresh writes the old launch again: sealed with the new key.
	h.clock.Advance(2 * time.Hour)
	if _, err := rotated.Ready(context.Background(), "sid-1", old.Handle()); err != nil {
		t.Fatalf("refreshing the old launch: %v", err)
	}
	if id := h.store.stored()[oldRecord][1:5]; !bytes.Equal(id, keyID(t, newKey)) {
		t.Error("the refreshed old launch is not sealed with the new key")
	}

	// The key order does not matter: each value names its key.
	reordered := h.withKeys(t, oldKey, newKey)
	if _, err := reordered.Ready(context.Background(), "sid-1", fresh.Handle()); err != nil {
		t.Fatalf("with the keys reordered: %v", err)
	}

	// Without the key a record was sealed with: a clean relaunch.
	h2, _ := sealHarness(t, oldKey)
	res := h2.complete("sid-2", &smarttest.LaunchContext{Patient: "pat-1"})
	_, err = h2.withKeys(t, newKey).Ready(context.Background(), "sid-2", res.Handle())
	wantUnsealable(t, err, core.CodeNoLaunch)
}

// TestSealWrongKey: an engine with a wrong key, or with none, answers a
// sealed record as missing: the ready path with CodeNoLaunch (401), the
// callback with CodeInvalidState; never a panic or a half-read record. And
// with keys set, a plain record written without them is refused.
func TestSealWrongKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h, _ := sealHarness(t, newStoreKey(t))
	res := h.complete("sid-1", &smarttest.LaunchContext{Patient: "pat-1"})

	for name, other := range map[string]*core.Engine{
		"wrong key": h.withKeys(t, newStoreKey(t)),
		"no key":    h.withKeys(t),
	} {
		_, err := other.Ready(ctx, "sid-1", res.Handle())
		wantUnsealable(t, err, core.CodeNoLaunch)
		if status := codeOf(err).HTTPStatus(); status != http.StatusUnauthorized {
			t.Errorf("%s, ready: %v (status %d)", name, err, status)
		}
		_, err = other.Ready(ctx, "sid-1", "") // the browser's list of launches is sealed too
		wantUnsealable(t, err, core.CodeNoLaunch)

		cb := h.launch("sid-1", &smarttest.LaunchContext{Patient: "pat-1"})
		_, err = other.Callback(ctx, "sid-1", cb)
		wantUnsealable(t, err, core.CodeInvalidState)
		// The launch relaunched with the right key works.
		h.complete("sid-1", &smarttest.LaunchContext{Patient: "pat-1"})
	}

	// A plain record stored before the keys were set is refused.
	plain := h.withKeys(t)
	authURL, err := plain.Launch(ctx, "sid-plain", h.ehr.FHIRBaseURL(), h.ehr.NewLaunch(smarttest.LaunchContext{Patient: "pat-1"}))
	if err != nil {
		t.Fatal(err)
	}
	pres, err := plain.Callback(ctx, "sid-plain", authorize(t, authURL))
	if err != nil {
		t.Fatal(err)
	}
	if v := h.store.stored()["launch:"+pres.Handle()]; len(v) == 0 || v[0] != '{' {
		t.Fatal("without keys, the record is not plain JSON")
	}
	_, err = h.eng.Ready(ctx, "sid-plain", pres.Handle())
	wantUnsealable(t, err, core.CodeNoLaunch)
	authURL, err = plain.Launch(ctx, "sid-plain", h.ehr.FHIRBaseURL(), h.ehr.NewLaunch(smarttest.LaunchContext{Patient: "pat-1"}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.eng.Callback(ctx, "sid-plain", authorize(t, authURL))
	wantUnsealable(t, err, core.CodeInvalidState)
}

// wantUnsealable checks that err has code and says why: its cause is a
// record that does not open, which counts as missing (core.ErrNotFound).
// An error for a record that is simply missing carries no such cause.
func wantUnsealable(t *testing.T, err error, code core.Code) {
	t.Helper()
	wantCode(t, err, code)
	if !errors.Is(err, core.ErrNotFound) || !strings.Contains(err.Error(), "cannot be opened with Config.StoreKeys") {
		t.Errorf("error %v does not say the record does not open with the keys", err)
	}
}

// A Config printed by mistake shows no key.
func TestStoreKeysNeverPrint(t *testing.T) {
	key := core.Secret(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("k"), 32))) // "a2tra2tr…"
	cfg := core.Config{StoreKeys: []core.Secret{key}}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "key", key)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s %x %q", cfg, cfg, cfg, key, key, key), logged.String()} {
		if strings.Contains(out, "a2tr") || strings.Contains(out, "61327472") {
			t.Errorf("a store key shows: %s", out)
		}
	}
}
