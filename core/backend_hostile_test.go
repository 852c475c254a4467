package core_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/fhir"
)

// evilBackendEHR is a Backend Services "EHR" whose every answer a test
// writes: its token endpoint's answers and its
// FHIR server's. It records what reached it.
type evilBackendEHR struct {
	srv *httptest.Server

	// token answers the n-th token request (from 1): status and body.
	token func(n int) (int, string)
	// fhir answers FHIR requests; the default answers 200 with a Patient.
	fhir http.HandlerFunc

	mu         sync.Mutex
	tokenReqs  int
	assertions []string
	fhirAuth   []string // the Authorization header of every FHIR request
}

func newEvilBackendEHR(t testing.TB) *evilBackendEHR {
	t.Helper()
	e := &evilBackendEHR{
		token: func(int) (int, string) {
			return 200, `{"access_token":"evil-token","token_type":"Bearer","expires_in":3600,"scope":"system/Patient.rs"}`
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fhir/.well-known/smart-configuration", func(w http.ResponseWriter, r *http.Request) {
		d := map[string]any{
			"issuer":                 e.srv.URL + "/auth",
			"authorization_endpoint": e.srv.URL + "/auth/authorize",
			"token_endpoint":         e.srv.URL + "/auth/token",
			"grant_types_supported":  []string{"client_credentials"},
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(d)
	})
	mux.HandleFunc("POST /auth/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		e.mu.Lock()
		e.tokenReqs++
		n := e.tokenReqs
		e.assertions = append(e.assertions, r.PostForm.Get("client_assertion"))
		e.mu.Unlock()
		status, body := e.token(n)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	})
	mux.HandleFunc("/fhir/", func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.fhirAuth = append(e.fhirAuth, r.Header.Get("Authorization"))
		h := e.fhir
		e.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Write([]byte(`{"resourceType":"Patient","id":"pat-1"}`))
	})
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *evilBackendEHR) iss() string { return e.srv.URL + "/fhir" }

func (e *evilBackendEHR) tokenRequests() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tokenReqs
}

// engine returns a Backend Services engine for the evil EHR alone, its
// log written to logs when that is not nil.
func (e *evilBackendEHR) engine(t testing.TB, logs *bytes.Buffer) *core.Engine {
	t.Helper()
	cfg := core.Config{
		ClientID:          "backend-app",
		Issuers:           []core.Issuer{{URL: e.iss(), Auth: core.ClientAuth{Signer: mustEC(t), KeyID: "k1"}}},
		AllowInsecureHTTP: true,
	}
	if logs != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	eng, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// A hostile EHR that answers every FHIR request 401 and every token
// request with the same token makes one token request per refused FHIR
// request, no more: the engine does not ask three times for a token the
// EHR just gave.
func TestBackendSameTokenAgainIsNotAskedForAgain(t *testing.T) {
	t.Parallel()
	ehr := newEvilBackendEHR(t)
	ehr.fhir = func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) }
	ctx := context.Background()
	c, err := ehr.engine(t, nil).Backend(ctx, ehr.iss(), "system/Patient.rs")
	if err != nil {
		t.Fatal(err)
	}
	_, err = fhir.Read[fhirPatient](ctx, c, "Patient/pat-1")
	wantFHIRStatus(t, err, http.StatusUnauthorized)
	if got := ehr.tokenRequests(); got != 2 {
		t.Errorf("%d token requests (the first and the renewal after the 401), want 2", got)
	}
}

// Whatever lifetime a hostile token endpoint names, Backend works and the
// token is reused rather than asked for on every call.
func TestBackendOddLifetimes(t *testing.T) {
	t.Parallel()
	for _, exp := range []string{`0`, `-5`, `1e300`, `99999999999999999999`, `"3600"`, `3600.9`, `null`} {
		t.Run(exp, func(t *testing.T) {
			t.Parallel()
			ehr := newEvilBackendEHR(t)
			ehr.token = func(int) (int, string) {
				return 200, `{"access_token":"evil-token","token_type":"Bearer","expires_in":` + exp + `}`
			}
			eng := ehr.engine(t, nil)
			ctx := context.Background()
			for range 3 {
				c, err := eng.Backend(ctx, ehr.iss(), "system/Patient.rs")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := fhir.Read[fhirPatient](ctx, c, "Patient/pat-1"); err != nil {
					t.Fatal(err)
				}
			}
			if got := ehr.tokenRequests(); got != 1 {
				t.Errorf("%d token requests, want 1", got)
			}
		})
	}
}

// An EHR that echoes the client assertion in its error answer does not get
// it into the error's message or the engine's log: a reader of the logs
// could redeem it at the EHR for minutes.
func TestBackendEchoedAssertionStaysOutOfErrorsAndLogs(t *testing.T) {
	t.Parallel()
	ehr := newEvilBackendEHR(t)
	ehr.token = func(n int) (int, string) {
		ehr.mu.Lock()
		a := ehr.assertions[n-1]
		ehr.mu.Unlock()
		b, _ := json.Marshal(map[string]string{"error": "invalid_scope", "error_description": a})
		return 400, string(b)
	}
	var logs bytes.Buffer
	_, err := ehr.engine(t, &logs).Backend(context.Background(), ehr.iss(), "system/Patient.rs")
	wantCode(t, err, core.CodeTokenExchangeFailed)
	ehr.mu.Lock()
	a := ehr.assertions[0]
	ehr.mu.Unlock()
	sig := a[strings.LastIndexByte(a, '.')+1:]
	if strings.Contains(err.Error(), sig) {
		t.Errorf("the error carries the client assertion: %v", err)
	}
	if strings.Contains(logs.String(), sig) {
		t.Errorf("the log carries the client assertion:\n%s", logs.String())
	}
}

// backendStoreKey is the storage key of the Backend Services token of an
// issuer, client id and scope (sorted), as core/backend.go names it.
func backendStoreKey(iss, clientID, scope string) string {
	sum := sha256.Sum256([]byte(iss + "\x00" + clientID + "\x00" + scope))
	return "backend:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// One engine serves a hostile issuer and an honest one, over one unsealed
// Storage. The hostile issuer's token never reaches the honest FHIR
// server: not through the engine's memory, and not when its stored record
// is copied under the honest issuer's key (by a co-tenant that writes the
// Storage). Nor does the honest token reach the hostile issuer.
func TestBackendTokensStayWithTheirIssuer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	evil := newEvilBackendEHR(t)
	honest := newBackendEnv(t, backendSetup{})
	store := newMemStorage(honest.clock.Now)
	eng, err := core.New(core.Config{
		Now:      honest.clock.Now,
		ClientID: "backend-app",
		Issuers: []core.Issuer{
			{URL: evil.iss(), Auth: honest.auth},
			{URL: honest.iss, Auth: honest.auth},
		},
		Storage:           store,
		AllowInsecureHTTP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ec, err := eng.Backend(ctx, evil.iss(), backendScope)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fhir.Read[fhirPatient](ctx, ec, "Patient/pat-1"); err != nil {
		t.Fatal(err)
	}
	// The co-tenant plants the hostile issuer's record under the honest
	// issuer's key, before the honest issuer's first call.
	store.mu.Lock()
	const sorted = "system/Observation.rs system/Patient.rs" // backendScope
	planted := store.data[backendStoreKey(evil.iss(), "backend-app", sorted)]
	store.data[backendStoreKey(honest.iss, "backend-app", sorted)] = planted
	store.mu.Unlock()
	if planted.b == nil {
		t.Fatal("the hostile issuer's token is not in the Storage under the key this test computes")
	}
	hc, err := eng.Backend(ctx, honest.iss, backendScope)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fhir.Read[fhirPatient](ctx, hc, "Patient/pat-1"); err != nil {
		t.Fatal(err)
	}
	for _, tok := range honest.ehr.FHIRTokens() {
		if tok == "evil-token" {
			t.Error("the honest FHIR server received the hostile issuer's token")
		}
	}
	if honest.tokenRequests() != 1 {
		t.Errorf("the honest issuer got %d token requests, want 1", honest.tokenRequests())
	}
	if _, err := fhir.Read[fhirPatient](ctx, ec, "Patient/pat-1"); err != nil {
		t.Fatal(err)
	}
	evil.mu.Lock()
	defer evil.mu.Unlock()
	for _, a := range evil.fhirAuth {
		if a != "Bearer evil-token" {
			t.Errorf("the hostile FHIR server received %q", a)
		}
	}
}

// The hostile EHR's FHIR server redirects to another origin, and its
// token endpoint does too: nothing follows, and the other origin sees no
// token and no assertion.
func TestBackendRedirectsStayOnTheOrigin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var elsewhere []string
	var mu sync.Mutex
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		elsewhere = append(elsewhere, r.Header.Get("Authorization")+r.PostForm.Get("client_assertion"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"resourceType":"Patient","id":"x","access_token":"other","token_type":"Bearer","expires_in":3600}`))
	}))
	t.Cleanup(other.Close)

	ehr := newEvilBackendEHR(t)
	ehr.fhir = func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}
	c, err := ehr.engine(t, nil).Backend(ctx, ehr.iss(), "system/Patient.rs")
	if err != nil {
		t.Fatal(err)
	}
	_, err = fhir.Read[fhirPatient](ctx, c, "Patient/pat-1")
	if err == nil {
		t.Error("a read redirected to another origin succeeded")
	}

	ehr2 := newEvilBackendEHR(t)
	ehr2.token = func(int) (int, string) { return 0, "" }
	ehr2.srv.Config.Handler = redirectTokenTo(ehr2.srv.Config.Handler, other.URL+"/token")
	_, err = ehr2.engine(t, nil).Backend(ctx, ehr2.iss(), "system/Patient.rs")
	wantCode(t, err, core.CodeTokenExchangeFailed)

	mu.Lock()
	defer mu.Unlock()
	if len(elsewhere) != 0 {
		t.Errorf("the other origin got %d requests: %q", len(elsewhere), elsewhere)
	}
}

// redirectTokenTo answers POST /auth/token with a 307 to target.
func redirectTokenTo(h http.Handler, target string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth/token" {
			http.Redirect(w, r, target, http.StatusTemporaryRedirect)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// heldLocker is a Locker whose every lock is held by someone else, for
// good: a co-tenant that keeps taking the key, or a broken Locker.
type heldLocker struct{}

func (heldLocker) TryLock(context.Context, string, time.Duration) (func(context.Context) error, bool, error) {
	return nil, false, nil
}

// A lock that is never free costs Backend Services the wait for it (at
// most RefreshLockTTL and a second), then a token request of its own, as
// a failing Locker does: the lock only saves token requests, and a
// co-tenant of the Locker cannot stop the app's backend jobs by holding it.
func TestBackendLockNeverFreeAsksAnyway(t *testing.T) {
	t.Parallel()
	env := newBackendEnv(t, backendSetup{cfg: core.Config{Locker: heldLocker{}, RefreshLockTTL: 100 * time.Millisecond}})
	c := env.backend(t)
	if _, err := fhir.Read[fhirPatient](context.Background(), c, "Patient/pat-1"); err != nil {
		t.Fatal(err)
	}
	if got := env.tokenRequests(); got != 1 {
		t.Errorf("%d token requests, want 1", got)
	}
}
