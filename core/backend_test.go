package core_test

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/fhir"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/internal/testclock"
)

// backendScope is the scope the Backend Services tests ask for.
const backendScope = "system/Patient.rs system/Observation.rs"

// backendSetup describes a Backend Services test: the EHR, the client it
// registers and the engine's settings. Zero fields take defaults.
type backendSetup struct {
	opts   smarttest.Options
	client smarttest.Client // default: "backend-app", private_key_jwt by auth's key in a JWKS, system/*.rs
	auth   *core.ClientAuth // default: an ES384 key, kid "backend-1"
	cfg    core.Config      // ClientID, Issuers, Storage, Now and AllowInsecureHTTP are filled in
	// front, when set, stands between the engine and the EHR (a network
	// that replays or reroutes requests).
	front func(http.Handler) http.Handler
	// skew sets the engine's clock this far from the EHR's.
	skew time.Duration
}

// backendEnv is a fake EHR and an engine of Backend Services only (no
// CallbackURL) configured for it.
type backendEnv struct {
	ehr   *smarttest.Server
	iss   string
	eng   *core.Engine
	store *memStorage
	clock *testclock.Clock
	auth  core.ClientAuth
}

func newBackendEnv(t testing.TB, s backendSetup) *backendEnv {
	t.Helper()
	c := testclock.New()
	if s.opts.Now == nil {
		s.opts.Now = c.Now
	}
	ehr := smarttest.NewUnstarted(s.opts)
	t.Cleanup(ehr.Close)
	var h http.Handler = ehr.Handler()
	if s.front != nil {
		h = s.front(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	auth := core.ClientAuth{Signer: mustEC(t), KeyID: "backend-1"}
	if s.auth != nil {
		auth = *s.auth
	}
	if s.client.ID == "" {
		s.client.ID = "backend-app"
	}
	if s.client.Auth == "" {
		s.client.Auth = smarttest.AuthPrivateKeyJWT
	}
	if s.client.Auth == smarttest.AuthPrivateKeyJWT && s.client.PublicKey == nil && len(s.client.JWKS.Keys) == 0 && s.client.JWKSURL == "" {
		s.client.JWKS = jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: auth.Signer.Public(), KeyID: auth.KeyID, Use: "sig"}}}
	}
	if s.client.SystemScope == "" {
		s.client.SystemScope = "system/*.rs"
	}
	ehr.RegisterClient(s.client)

	iss := srv.URL + "/fhir"
	cfg := s.cfg
	if cfg.ClientID == "" {
		cfg.ClientID = s.client.ID
	}
	if len(cfg.Issuers) == 0 {
		cfg.Issuers = []core.Issuer{{URL: iss, Auth: auth}}
	}
	store := newMemStorage(c.Now)
	if cfg.Storage == nil {
		cfg.Storage = store
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return c.Now().Add(s.skew) }
	}
	cfg.AllowInsecureHTTP = true
	eng, err := core.New(cfg)
	if err != nil {
		t.Fatalf("core.New: %v", err)
	}
	return &backendEnv{ehr: ehr, iss: iss, eng: eng, store: store, clock: c, auth: auth}
}

// backend calls Backend with backendScope.
func (env *backendEnv) backend(t testing.TB) *fhir.Client {
	t.Helper()
	c, err := env.eng.Backend(context.Background(), env.iss, backendScope)
	if err != nil {
		t.Fatalf("Backend: %v", err)
	}
	return c
}

// tokenRequests is the number of client_credentials token requests the
// EHR has served.
func (env *backendEnv) tokenRequests() int {
	return env.ehr.Count(smarttest.EndpointTokenClientCredentials)
}

// An engine without a CallbackURL reads any patient with a system token,
// signed RS384 or ES384 through any crypto.Signer; its launches fail with
// invalid_config.
func TestBackendReadsAnyPatient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		signer crypto.Signer
	}{
		{"RS384", mustRSA(t)},
		{"ES384 through a crypto.Signer", kmsSigner{mustEC(t)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			env := newBackendEnv(t, backendSetup{auth: &core.ClientAuth{Signer: tc.signer, KeyID: "k-" + tc.name}})
			c := env.backend(t)
			for _, id := range []string{"pat-1", "pat-2", "pat-3"} {
				p, err := fhir.Read[fhirPatient](ctx, c, "Patient/"+id)
				if err != nil || p.ID != id {
					t.Fatalf("Read Patient/%s = %+v, %v", id, p, err)
				}
			}
			n := 0
			for obs, err := range c.Search(ctx, "Observation", url.Values{"patient": {"pat-2"}}) {
				if err != nil {
					t.Fatalf("Search: %v", err)
				}
				if !bytes.Contains(obs, []byte(`"Patient/pat-2"`)) {
					t.Errorf("an Observation of another patient: %s", obs)
				}
				n++
			}
			if n != 5 {
				t.Errorf("pat-2 has %d observations, want 5", n)
			}
			if got := env.tokenRequests(); got != 1 {
				t.Errorf("%d token requests, want 1", got)
			}
			if c.BaseURL() != env.iss {
				t.Errorf("BaseURL %q, want %q", c.BaseURL(), env.iss)
			}

			_, err := env.eng.Launch(ctx, "browser", env.iss, "")
			wantCode(t, err, core.CodeInvalidConfig)
		})
	}
}

// What the engine refuses itself, before any request: issuers that are
// not configured or cannot sign, scopes that are not system scopes.
func TestBackendRefusesBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newBackendEnv(t, backendSetup{})
	secretIss := "https://secret.ehr.test/fhir"
	noKidIss := "https://nokid.ehr.test/fhir"
	eng, err := core.New(core.Config{
		ClientID: "backend-app",
		Issuers: []core.Issuer{
			{URL: env.iss, Auth: env.auth},
			{URL: secretIss, Auth: core.ClientAuth{Secret: "s"}},
			{URL: noKidIss, Auth: core.ClientAuth{Signer: mustEC(t)}},
		},
		AllowInsecureHTTP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, iss, scope string
		code             core.Code
	}{
		{"issuer not configured", "https://other.ehr.test/fhir", backendScope, core.CodeUnknownIssuer},
		{"issuer with a secret", secretIss, backendScope, core.CodeInvalidConfig},
		{"issuer without a kid", noKidIss, backendScope, core.CodeInvalidConfig},
		{"no scope", env.iss, " ", core.CodeInvalidRequest},
		{"a patient scope", env.iss, "system/Patient.rs patient/*.rs", core.CodeInvalidRequest},
		{"launch scopes", env.iss, "openid fhirUser", core.CodeInvalidRequest},
		{"system/ alone", env.iss, "system/", core.CodeInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := eng.Backend(ctx, tc.iss, tc.scope)
			wantCode(t, err, tc.code)
		})
	}
	if n := env.ehr.Count(smarttest.EndpointToken) + env.ehr.Count(smarttest.EndpointDiscovery); n != 0 {
		t.Errorf("the refusals made %d requests to the EHR, want none", n)
	}

	// With AllowAnyIssuer too, only configured issuers do Backend Services.
	any, err := core.New(core.Config{ClientID: "backend-app", AllowAnyIssuer: true,
		DefaultIssuer: core.Issuer{Auth: env.auth}, AllowInsecureHTTP: true, AllowPrivateNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = any.Backend(ctx, env.iss, backendScope)
	wantCode(t, err, core.CodeUnknownIssuer)
}

// wantRefused checks that err is the engine's token_exchange_failed
// carrying the EHR's OAuth error oauthCode, and that the EHR refused the
// last client_credentials request with it, saying says.
func wantRefused(t *testing.T, env *backendEnv, err error, oauthCode, says string) {
	t.Helper()
	wantCode(t, err, core.CodeTokenExchangeFailed)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != oauthCode {
		t.Errorf("the error carries %+v, want the EHR's %s", re, oauthCode)
	}
	refusals := env.ehr.Refusals(smarttest.EndpointTokenClientCredentials)
	if len(refusals) == 0 {
		t.Fatal("the EHR refused no client_credentials request")
	}
	last := refusals[len(refusals)-1]
	if last.Code != oauthCode || !strings.Contains(last.Description, says) {
		t.Errorf("the EHR refused with %q %q, want %s saying %q", last.Code, last.Description, oauthCode, says)
	}
}

// Each check of the EHR's client_credentials grant refuses what the
// engine sent, and the engine reports it as token_exchange_failed with
// the EHR's OAuth error.
func TestBackendAssertionChecks(t *testing.T) {
	t.Parallel()
	otherKey := mustEC(t)
	registered := func(kid string, key crypto.PublicKey) smarttest.Client {
		return smarttest.Client{JWKS: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key, KeyID: kid, Use: "sig"}}}}
	}
	for _, tc := range []struct {
		name      string
		setup     func(t *testing.T) backendSetup
		oauthCode string
		says      string
	}{
		{"iss is not the registered client", func(*testing.T) backendSetup {
			return backendSetup{cfg: core.Config{ClientID: "someone-else"}}
		}, "invalid_client", `unknown client "someone-else"`},
		{"aud is not the token URL", func(*testing.T) backendSetup {
			// The EHR's token endpoint knows itself by another name than
			// the one its discovery gives.
			return backendSetup{front: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/auth/token" {
						r.Host = "token.elsewhere.test"
					}
					h.ServeHTTP(w, r)
				})
			}}
		}, "invalid_client", "aud must be http://token.elsewhere.test/auth/token"},
		{"exp has passed", func(*testing.T) backendSetup {
			return backendSetup{skew: -10 * time.Minute}
		}, "invalid_client", "client_assertion: expired"},
		{"exp more than five minutes ahead", func(*testing.T) backendSetup {
			return backendSetup{skew: 2 * time.Minute}
		}, "invalid_client", "more than five minutes ahead"},
		{"kid not in the registered JWKS", func(*testing.T) backendSetup {
			return backendSetup{client: registered("another-kid", otherKey.Public())}
		}, "invalid_client", `kid "backend-1" is not in the client's JWKS`},
		{"signed by another key than the kid's", func(*testing.T) backendSetup {
			return backendSetup{client: registered("backend-1", otherKey.Public())}
		}, "invalid_client", "client_assertion: go-jose"},
		{"kid not in the JWKS at the registered URL", func(t *testing.T) backendSetup {
			jwks, err := core.JWKSHandler(core.ClientAuth{Signer: otherKey, KeyID: "published"})
			if err != nil {
				t.Fatal(err)
			}
			app := httptest.NewServer(jwks)
			t.Cleanup(app.Close)
			return backendSetup{client: smarttest.Client{JWKSURL: app.URL}}
		}, "invalid_client", `kid "backend-1" is not in the client's JWKS`},
		{"a client of another authentication", func(*testing.T) backendSetup {
			return backendSetup{client: smarttest.Client{Auth: smarttest.AuthClientSecretBasic, Secret: "s"}}
		}, "invalid_client", "must authenticate with client_secret_basic, not private_key_jwt"},
		{"scope beyond the registered system scopes", func(*testing.T) backendSetup {
			return backendSetup{client: smarttest.Client{SystemScope: "system/Patient.rs"}}
		}, "invalid_scope", "not registered for system/Observation.rs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newBackendEnv(t, tc.setup(t))
			_, err := env.eng.Backend(context.Background(), env.iss, backendScope)
			wantRefused(t, env, err, tc.oauthCode, tc.says)
			if n := len(env.ehr.FHIRTokens()); n != 0 {
				t.Errorf("%d FHIR requests went out, want none", n)
			}
		})
	}
}

// An assertion replayed (by a network that keeps the first token request's
// body) is refused for its jti; the failed renewal reaches the FHIR
// request as a *fhir.Error around token_exchange_failed.
func TestBackendAssertionReplayed(t *testing.T) {
	t.Parallel()
	var first atomic.Pointer[[]byte]
	env := newBackendEnv(t, backendSetup{front: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/auth/token" {
				body, _ := io.ReadAll(r.Body)
				if !first.CompareAndSwap(nil, &body) {
					body = *first.Load()
				}
				r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			}
			h.ServeHTTP(w, r)
		})
	}})
	ctx := context.Background()
	c := env.backend(t)
	if _, err := fhir.Read[fhirPatient](ctx, c, "Patient/pat-1"); err != nil {
		t.Fatal(err)
	}
	env.ehr.ExpireAccessTokens() // the FHIR server answers 401: the engine asks for a new token
	_, err := fhir.Read[fhirPatient](ctx, c, "Patient/pat-1")
	var fe *fhir.Error
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a *fhir.Error", err)
	}
	wantRefused(t, env, err, "invalid_client", "jti was already used")
	if got := env.tokenRequests(); got != 2 {
		t.Errorf("%d token requests, want 2", got)
	}
}

// A token endpoint or discovery that fails gives its own typed error.
func TestBackendEHRFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	env := newBackendEnv(t, backendSetup{cfg: core.Config{MaxRetries: -1}})
	env.ehr.SetFaults(smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointDiscovery: 500, smarttest.EndpointMetadata: 500}})
	_, err := env.eng.Backend(ctx, env.iss, backendScope)
	wantCode(t, err, core.CodeDiscoveryFailed)

	env.clock.Advance(3 * time.Second) // past the pause after a failure
	env.ehr.SetFaults(smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointTokenClientCredentials: 503}})
	_, err = env.eng.Backend(ctx, env.iss, backendScope)
	wantCode(t, err, core.CodeTokenExchangeFailed)

	// A FHIR error answer stays the FHIR server's: a *fhir.Error with its
	// status, and no token request.
	env.clock.Advance(3 * time.Second)
	env.ehr.SetFaults(smarttest.Faults{})
	c := env.backend(t)
	env.ehr.ResetCounts()
	_, err = fhir.Read[fhirPatient](ctx, c, "Patient/nobody")
	if !errors.Is(err, fhir.ErrNotFound) || codeOf(err) != "" {
		t.Errorf("reading a missing patient: %v, want fhir.ErrNotFound and no core code", err)
	}
	if got := env.tokenRequests(); got != 0 {
		t.Errorf("%d token requests, want 0", got)
	}
}

// While the token is fresh, 1,000 FHIR calls make one token request, and
// every call of Backend for the same issuer and scope shares it.
func TestBackendReusesTheToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newBackendEnv(t, backendSetup{})
	c := env.backend(t)
	for i := range 1000 {
		if _, err := fhir.Read[fhirPatient](ctx, c, "Patient/pat-1"); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	again, err := env.eng.Backend(ctx, env.iss+"/", "system/Observation.rs  system/Patient.rs system/Patient.rs")
	if err != nil {
		t.Fatal(err)
	}
	if again != c {
		t.Error("Backend with the same scope in another order made another client")
	}
	if got, fhirs := env.tokenRequests(), env.ehr.Count(smarttest.EndpointFHIR); got != 1 || fhirs != 1000 {
		t.Errorf("%d token requests for %d FHIR requests, want 1 for 1000", got, fhirs)
	}
	if n := env.ehr.Count(smarttest.EndpointDiscovery); n != 1 {
		t.Errorf("%d discoveries, want 1", n)
	}

	// Another scope is another token.
	other, err := env.eng.Backend(ctx, env.iss, "system/Patient.rs")
	if err != nil {
		t.Fatal(err)
	}
	if other == c || env.tokenRequests() != 2 {
		t.Errorf("another scope shared the client or the token (%d token requests, want 2)", env.tokenRequests())
	}
}

// The token is renewed within the leeway of its expiry, and after it.
func TestBackendRenewsBeforeExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newBackendEnv(t, backendSetup{}) // tokens live an hour; Leeway is a minute
	c := env.backend(t)
	read := func() {
		t.Helper()
		if _, err := fhir.Read[fhirPatient](ctx, c, "Patient/pat-1"); err != nil {
			t.Fatal(err)
		}
	}
	read()
	env.clock.Advance(58 * time.Minute)
	read()
	if got := env.tokenRequests(); got != 1 {
		t.Fatalf("%d token requests two minutes before expiry, want 1", got)
	}
	env.clock.Advance(90 * time.Second) // 30 seconds before expiry: within the leeway
	read()
	if got := env.tokenRequests(); got != 2 {
		t.Fatalf("%d token requests within the leeway, want 2", got)
	}
	env.clock.Advance(3 * time.Hour) // long expired
	read()
	if got := env.tokenRequests(); got != 3 {
		t.Fatalf("%d token requests after expiry, want 3", got)
	}
	tokens := env.ehr.FHIRTokens()
	if len(tokens) != 4 || tokens[0] != tokens[1] || tokens[1] == tokens[2] || tokens[2] == tokens[3] {
		t.Errorf("the FHIR requests carried tokens %v; want a new one after each renewal", redactedList(tokens))
	}
}

// redactedList shows which tokens of a list are the same, not the tokens.
func redactedList(tokens []string) []int {
	ids := map[string]int{}
	var out []int
	for _, tok := range tokens {
		if _, ok := ids[tok]; !ok {
			ids[tok] = len(ids)
		}
		out = append(out, ids[tok])
	}
	return out
}

// Fifty concurrent calls that find the token expired make one token
// request, and all carry the new token.
func TestBackendConcurrentRenewalOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newBackendEnv(t, backendSetup{})
	c := env.backend(t)
	env.clock.Advance(2 * time.Hour)
	env.ehr.ResetCounts()
	// A slow EHR keeps the token request in flight while the others pile up.
	env.ehr.SetFaults(smarttest.Faults{Latency: 20 * time.Millisecond})
	const n = 50
	atOnce(t, n, func(i int) error {
		if p, err := fhir.Read[fhirPatient](ctx, c, "Patient/pat-3"); err != nil || p.ID != "pat-3" {
			return fmt.Errorf("call %d: %+v, %w", i, p, err)
		}
		return nil
	})
	if got := env.tokenRequests(); got != 1 {
		t.Errorf("%d concurrent calls on an expired token made %d token requests, want 1", n, got)
	}
	wantOneToken(t, env.ehr, n)
}

// A 401 asks for a new token and retries once with it; a second 401 is
// the FHIR server's answer.
func TestBackendRenewsOn401(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newBackendEnv(t, backendSetup{})
	c := env.backend(t)
	env.ehr.ExpireAccessTokens()
	if _, err := fhir.Read[fhirPatient](ctx, c, "Patient/pat-1"); err != nil {
		t.Fatalf("read after the EHR expired the token: %v", err)
	}
	if got := env.tokenRequests(); got != 2 {
		t.Errorf("%d token requests, want 2", got)
	}
	env.ehr.ResetCounts()
	env.ehr.SetFaults(smarttest.Faults{Unauthorized: 2})
	_, err := fhir.Read[fhirPatient](ctx, c, "Patient/pat-1")
	if fe := wantFHIRStatus(t, err, http.StatusUnauthorized); fe != nil && codeOf(err) != "" {
		t.Errorf("two 401s gave %v, want the FHIR server's 401 alone", err)
	}
	if got, fhirs := env.tokenRequests(), env.ehr.Count(smarttest.EndpointFHIR); got != 1 || fhirs != 2 {
		t.Errorf("%d token requests and %d FHIR requests, want 1 and 2: no loop", got, fhirs)
	}
}

// Instances that share Storage and Locker share the token: one token
// request among them, also when both find it expired at once. The stored
// token is sealed with StoreKeys.
func TestBackendSharedAcrossInstances(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := newMemLocker()
	env := newBackendEnv(t, backendSetup{cfg: core.Config{Locker: l, StoreKeys: []core.Secret{newStoreKey(t)}}})
	other, err := core.New(env.eng.Config())
	if err != nil {
		t.Fatal(err)
	}
	a := env.backend(t)
	b, err := other.Backend(ctx, env.iss, backendScope)
	if err != nil {
		t.Fatal(err)
	}
	if got := env.tokenRequests(); got != 1 {
		t.Fatalf("two instances made %d token requests, want 1", got)
	}
	for _, c := range []*fhir.Client{a, b} {
		if _, err := fhir.Read[fhirPatient](ctx, c, "Patient/pat-1"); err != nil {
			t.Fatal(err)
		}
	}
	tokens := env.ehr.FHIRTokens()
	if tokens[0] != tokens[1] {
		t.Error("the instances used different tokens")
	}
	env.store.mu.Lock()
	for k, v := range env.store.data {
		if bytes.Contains(v.b, []byte(tokens[0])) {
			t.Errorf("the store holds the access token in clear under %q", k)
		}
	}
	env.store.mu.Unlock()

	env.clock.Advance(2 * time.Hour)
	env.ehr.ResetCounts()
	env.ehr.SetFaults(smarttest.Faults{Latency: 20 * time.Millisecond})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		c := a
		if i%2 == 1 {
			c = b
		}
		wg.Go(func() {
			if _, err := fhir.Read[fhirPatient](ctx, c, "Patient/pat-2"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := env.tokenRequests(); got != 1 {
		t.Errorf("two instances renewing at once made %d token requests, want 1", got)
	}
	if !l.used("backend") {
		t.Error("the renewal took no lock of Config.Locker")
	}
}

// A failing Storage does not fail Backend Services: the token is asked
// for, and the client works.
func TestBackendWithoutStorage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newBackendEnv(t, backendSetup{})
	env.store.setFail(errors.New("the store is down"))
	c := env.backend(t)
	if _, err := fhir.Read[fhirPatient](ctx, c, "Patient/pat-1"); err != nil {
		t.Fatal(err)
	}
}

// A program that loops over patients while the token endpoint fails does
// not flood it: for two seconds after a failed token request, calls get
// its error without asking again; then one call asks again, and once the
// endpoint answers, the token serves.
func TestBackendFailingTokenEndpointIsNotFlooded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newBackendEnv(t, backendSetup{cfg: core.Config{MaxRetries: -1}})
	env.ehr.SetFaults(smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointTokenClientCredentials: 503}})
	for range 100 {
		_, err := env.eng.Backend(ctx, env.iss, backendScope)
		wantCode(t, err, core.CodeTokenExchangeFailed)
	}
	if got := env.tokenRequests(); got != 1 {
		t.Fatalf("100 calls in a row against a failing token endpoint made %d token requests, want 1", got)
	}
	env.clock.Advance(3 * time.Second)
	env.ehr.SetFaults(smarttest.Faults{})
	c := env.backend(t)
	if got := env.tokenRequests(); got != 2 {
		t.Fatalf("after the pause, %d token requests in all, want 2", got)
	}
	if _, err := fhir.Read[fhirPatient](ctx, c, "Patient/pat-1"); err != nil {
		t.Fatal(err)
	}
}
