package core_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/fhir"
	"github.com/fhirware/smart/core/smarttest"
)

// kmsSigner hides a private key behind crypto.Signer, as a KMS client
// would: the engine only ever sees Public and Sign.
type kmsSigner struct{ key crypto.Signer }

func (k kmsSigner) Public() crypto.PublicKey { return k.key.Public() }
func (k kmsSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.key.Sign(r, digest, opts)
}

func mustRSA(t testing.TB) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustEC(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var pat1 = smarttest.LaunchContext{Patient: "pat-1", Encounter: "enc-1", FHIRUser: "Practitioner/prac-1", NeedPatientBanner: true}

// flowCase is one complete launch → callback → ready run.
type flowCase struct {
	name   string
	opts   smarttest.Options
	client smarttest.Client
	issuer core.Issuer
	cfg    core.Config
	lc     *smarttest.LaunchContext // nil: standalone
	check  func(t *testing.T, h *harness, authURL *url.URL, rc *core.ReadyClient)
}

func (tc flowCase) run(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, tc.opts, tc.client, tc.cfg, tc.issuer)
	launch := ""
	if tc.lc != nil {
		launch = h.ehr.NewLaunch(*tc.lc)
	}
	raw, err := h.eng.Launch(ctx, "browser-1", h.ehr.FHIRBaseURL(), launch)
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	authURL, _ := url.Parse(raw)
	res, err := h.eng.Callback(ctx, "browser-1", authorize(t, raw))
	if err != nil {
		t.Fatalf("Callback: %v", err)
	}
	if res.Handle() == "" {
		t.Fatal("the callback's client has no handle")
	}
	rc, err := h.eng.Ready(ctx, "browser-1", res.Handle())
	if err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if rc.Handle() != res.Handle() || rc.Patient() != res.Patient() {
		t.Fatalf("Ready gave launch %q of %q, want the callback's %q of %q",
			rc.Handle(), rc.Patient().String(), res.Handle(), res.Patient().String())
	}
	tc.check(t, h, authURL, rc)
	// The callback's token was fresh: no request of the run refreshed it.
	if n := h.ehr.Count(smarttest.EndpointTokenRefresh); n != 0 {
		t.Errorf("%d refreshes of the token the callback got", n)
	}
}

func wantPatient(id string) func(*testing.T, *harness, *url.URL, *core.ReadyClient) {
	return func(t *testing.T, _ *harness, _ *url.URL, rc *core.ReadyClient) {
		if got := rc.Patient().ID; got != id {
			t.Fatalf("patient %q, want %q", got, id)
		}
		var p struct {
			ResourceType, ID string
		}
		if err := readPatient(context.Background(), rc, &p); err != nil {
			t.Fatalf("reading the patient: %v", err)
		}
		if p.ResourceType != "Patient" || p.ID != id {
			t.Fatalf("read %+v, want Patient/%s", p, id)
		}
	}
}

func TestFlow(t *testing.T) {
	rsaKey, ecKey := mustRSA(t), mustEC(t)
	tests := []flowCase{
		{
			name: "ehr launch sends every SMART parameter",
			lc:   &pat1,
			check: func(t *testing.T, h *harness, u *url.URL, rc *core.ReadyClient) {
				q := u.Query()
				for k, want := range map[string]string{
					"response_type": "code", "client_id": "app", "redirect_uri": "http://app.test/fhir/callback",
					"scope": "launch openid fhirUser patient/*.read offline_access", "aud": h.ehr.FHIRBaseURL(), "code_challenge_method": "S256",
				} {
					if got := q.Get(k); got != want {
						t.Errorf("%s = %q, want %q", k, got, want)
					}
				}
				for _, k := range []string{"state", "nonce", "code_challenge"} {
					if len(q.Get(k)) < 43 { // 256 bits in base64url
						t.Errorf("%s = %q: shorter than 256 bits", k, q.Get(k))
					}
				}
				if q.Get("launch") == "" {
					t.Error("launch parameter missing")
				}
				lc := rc.LaunchContext()
				if rc.Patient().ID != "pat-1" || rc.Encounter().ID != "enc-1" || !lc.NeedPatientBanner {
					t.Errorf("context %+v", lc)
				}
				if rc.User().String() != "Practitioner/prac-1" || rc.User().Type != "Practitioner" {
					t.Errorf("user %+v", rc.User())
				}
				if lc.Subject == "" || lc.AuthIssuer != h.ehr.AuthIssuer() {
					t.Errorf("id_token claims not kept: sub %q iss %q", lc.Subject, lc.AuthIssuer)
				}
				wantPatient("pat-1")(t, h, u, rc)
			},
		},
		{
			name: "standalone launch asks for launch/patient",
			check: func(t *testing.T, h *harness, u *url.URL, rc *core.ReadyClient) {
				q := u.Query()
				if q.Has("launch") {
					t.Error("standalone launch sent a launch parameter")
				}
				if !strings.Contains(" "+q.Get("scope")+" ", " launch/patient ") {
					t.Errorf("scope %q lacks launch/patient", q.Get("scope"))
				}
				wantPatient(h.ehr.Patients()[0].ID)(t, h, u, rc)
			},
		},
		{
			name:   "client_secret_basic",
			client: smarttest.Client{Auth: smarttest.AuthClientSecretBasic, Secret: "s3cr&t:x"},
			issuer: core.Issuer{Auth: core.ClientAuth{Secret: "s3cr&t:x"}},
			lc:     &pat1, check: wantPatient("pat-1"),
		},
		{
			name:   "client_secret_post",
			client: smarttest.Client{Auth: smarttest.AuthClientSecretPost, Secret: "post-secret"},
			issuer: core.Issuer{Auth: core.ClientAuth{Secret: "post-secret", AuthStyle: oauth2.AuthStyleInParams}},
			lc:     &pat1, check: wantPatient("pat-1"),
		},
		{
			name:   "private_key_jwt RS384",
			client: smarttest.Client{Auth: smarttest.AuthPrivateKeyJWT, PublicKey: rsaKey.Public()},
			issuer: core.Issuer{Auth: core.ClientAuth{Signer: rsaKey, KeyID: "app-rsa"}},
			lc:     &pat1, check: wantPatient("pat-1"),
		},
		{
			name:   "private_key_jwt ES384 through a crypto.Signer",
			client: smarttest.Client{Auth: smarttest.AuthPrivateKeyJWT, PublicKey: ecKey.Public()},
			issuer: core.Issuer{Auth: core.ClientAuth{Signer: kmsSigner{ecKey}, KeyID: "app-ec"}},
			lc:     &pat1, check: wantPatient("pat-1"),
		},
		{
			name: "discovery falls back to the CapabilityStatement",
			opts: smarttest.Options{NoSmartConfiguration: true},
			cfg:  core.Config{Scope: "launch patient/*.read"}, // no jwks_uri there: no openid
			lc:   &pat1,
			check: func(t *testing.T, h *harness, u *url.URL, rc *core.ReadyClient) {
				if h.ehr.Count(smarttest.EndpointMetadata) == 0 {
					t.Error("the CapabilityStatement was never fetched")
				}
				wantPatient("pat-1")(t, h, u, rc)
			},
		},
		{
			name: "relative endpoints are resolved",
			opts: smarttest.Options{RelativeEndpoints: true},
			lc:   &pat1,
			check: func(t *testing.T, h *harness, u *url.URL, rc *core.ReadyClient) {
				if got := u.Scheme + "://" + u.Host + u.Path; got != h.ehr.AuthorizeURL() {
					t.Errorf("authorize URL %q, want %q", got, h.ehr.AuthorizeURL())
				}
				wantPatient("pat-1")(t, h, u, rc)
			},
		},
		{
			name: "fhirUser relative",
			lc:   &smarttest.LaunchContext{Patient: "pat-2", FHIRUser: "Practitioner/prac-1"},
			check: func(t *testing.T, h *harness, u *url.URL, rc *core.ReadyClient) {
				if u := rc.User(); u != (fhir.Reference{Type: "Practitioner", ID: "prac-1"}) || u.String() != "Practitioner/prac-1" {
					t.Errorf("user %+v", u)
				}
				var p struct{ ResourceType, ID string }
				if err := rc.FHIR().Read(context.Background(), rc.User().String(), &p); err != nil || p.ID != "prac-1" {
					t.Errorf("reading the user: %+v %v", p, err)
				}
			},
		},
		{
			name: "fhirUser absolute on the same server becomes relative",
			lc:   &smarttest.LaunchContext{Patient: "pat-2"}, // FHIRUser set in check's launch below
			check: func(t *testing.T, h *harness, u *url.URL, rc *core.ReadyClient) {
				lc := smarttest.LaunchContext{Patient: "pat-2", FHIRUser: h.ehr.FHIRBaseURL() + "/Practitioner/prac-1"}
				res := h.complete("browser-abs", &lc)
				rc2, err := h.eng.Ready(context.Background(), "browser-abs", res.Handle())
				if err != nil {
					t.Fatal(err)
				}
				if got := rc2.User(); got != (fhir.Reference{Type: "Practitioner", ID: "prac-1"}) || got.String() != "Practitioner/prac-1" {
					t.Errorf("user %+v, want Practitioner/prac-1 without a URL", got)
				}
				if got := rc2.LaunchContext().User; got != rc2.User() {
					t.Errorf("the launch context's user %+v, want %+v", got, rc2.User())
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}

// failCase is a launch that must end in an error with code.
type failCase struct {
	name string
	opts smarttest.Options
	cfg  core.Config
	// prepare may change the EHR or storage before launching; do runs the
	// part under test and returns its error.
	prepare func(h *harness)
	do      func(t *testing.T, h *harness) error
	code    core.Code
}

func (tc failCase) run(t *testing.T) {
	t.Parallel()
	h := newHarness(t, tc.opts, smarttest.Client{}, tc.cfg, core.Issuer{})
	if tc.prepare != nil {
		tc.prepare(h)
	}
	do := tc.do
	if do == nil {
		do = callbackErr
	}
	wantCode(t, do(t, h), tc.code)
}

// callbackErr runs a launch and returns the callback's error.
func callbackErr(t *testing.T, h *harness) error {
	_, err := h.eng.Callback(context.Background(), "browser-1", h.launch("browser-1", &pat1))
	return err
}

func idTokenFault(f smarttest.IDTokenFault) func(*harness) {
	return func(h *harness) { h.ehr.SetFaults(smarttest.Faults{IDToken: f}) }
}

func TestCallbackRefuses(t *testing.T) {
	tests := []failCase{
		{name: "wrong state", code: core.CodeInvalidState, do: func(t *testing.T, h *harness) error {
			cb := h.launch("browser-1", &pat1)
			cb.Query.Set("state", "not-"+cb.Query.Get("state"))
			_, err := h.eng.Callback(context.Background(), "browser-1", cb)
			return err
		}},
		{name: "replayed state", code: core.CodeInvalidState, do: func(t *testing.T, h *harness) error {
			cb := h.launch("browser-1", &pat1)
			if _, err := h.eng.Callback(context.Background(), "browser-1", cb); err != nil {
				t.Fatalf("first callback: %v", err)
			}
			_, err := h.eng.Callback(context.Background(), "browser-1", cb)
			return err
		}},
		{name: "expired state", code: core.CodeInvalidState, cfg: core.Config{PendingLaunchTTL: 2 * time.Minute}, do: func(t *testing.T, h *harness) error {
			cb := h.launch("browser-1", &pat1)
			// The storage still holds the record (its TTL is generous in
			// stores that round up); the engine's own expiry must catch it.
			h.store.now = func() time.Time { return h.clock.Now().Add(-time.Hour) }
			h.clock.Advance(3 * time.Minute)
			_, err := h.eng.Callback(context.Background(), "browser-1", cb)
			return err
		}},
		{name: "state from another browser session", code: core.CodeInvalidState, do: func(t *testing.T, h *harness) error {
			cb := h.launch("victim", &pat1)
			_, err := h.eng.Callback(context.Background(), "attacker", cb)
			return err
		}},
		{name: "missing state", code: core.CodeInvalidRequest, do: func(t *testing.T, h *harness) error {
			_, err := h.eng.Callback(context.Background(), "b", core.CallbackRequest{Query: url.Values{"code": {"x"}}})
			return err
		}},
		{name: "missing code", code: core.CodeInvalidRequest, do: func(t *testing.T, h *harness) error {
			_, err := h.eng.Callback(context.Background(), "b", core.CallbackRequest{Query: url.Values{"state": {"x"}}})
			return err
		}},
		{name: "PKCE verifier does not match the challenge", code: core.CodeTokenExchangeFailed, do: func(t *testing.T, h *harness) error {
			raw, err := h.eng.Launch(context.Background(), "browser-1", h.ehr.FHIRBaseURL(), h.ehr.NewLaunch(pat1))
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(raw)
			q := u.Query()
			q.Set("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM") // another verifier's
			u.RawQuery = q.Encode()
			_, err = h.eng.Callback(context.Background(), "browser-1", authorize(t, u.String()))
			return err
		}},
		{name: "EHR answers access_denied", code: core.CodeAuthorizationDenied, prepare: func(h *harness) {
			h.ehr.SetFaults(smarttest.Faults{AuthorizeError: "access_denied", AuthorizeErrorDescription: "the user said no"})
		}},
		{name: "RFC 9207 iss mismatch", code: core.CodeInvalidRequest, opts: smarttest.Options{AuthorizationResponseIss: true}, prepare: func(h *harness) {
			h.ehr.SetFaults(smarttest.Faults{WrongCallbackIss: true})
		}},
		{name: "RFC 9207 iss missing where advertised", code: core.CodeInvalidRequest, opts: smarttest.Options{AuthorizationResponseIss: true},
			do: func(t *testing.T, h *harness) error {
				cb := h.launch("browser-1", &pat1)
				if cb.Query.Get("iss") == "" {
					t.Fatal("smarttest sent no iss")
				}
				cb.Query.Del("iss")
				_, err := h.eng.Callback(context.Background(), "browser-1", cb)
				return err
			}},
		{name: "id_token with a bad signature", code: core.CodeInvalidIDToken, prepare: idTokenFault(smarttest.IDTokenBadSignature)},
		{name: "id_token alg none", code: core.CodeInvalidIDToken, prepare: idTokenFault(smarttest.IDTokenAlgNone)},
		{name: "id_token HS256 with the public key", code: core.CodeInvalidIDToken, prepare: idTokenFault(smarttest.IDTokenHS256PublicKey)},
		{name: "id_token with an unknown kid", code: core.CodeInvalidIDToken, prepare: idTokenFault(smarttest.IDTokenUnknownKID)},
		{name: "id_token for another audience", code: core.CodeInvalidIDToken, prepare: idTokenFault(smarttest.IDTokenWrongAudience)},
		{name: "id_token audiences without ours", code: core.CodeInvalidIDToken, prepare: idTokenFault(smarttest.IDTokenMultipleAudiencesWithoutClient)},
		{name: "id_token from another issuer", code: core.CodeInvalidIDToken, prepare: idTokenFault(smarttest.IDTokenWrongIssuer)},
		{name: "id_token expired", code: core.CodeInvalidIDToken, prepare: idTokenFault(smarttest.IDTokenExpired)},
		{name: "id_token with the wrong nonce", code: core.CodeInvalidIDToken, prepare: idTokenFault(smarttest.IDTokenWrongNonce)},
		{name: "id_token without a nonce", code: core.CodeInvalidIDToken, prepare: idTokenFault(smarttest.IDTokenNoNonce)},
		{name: "id_token issued in the future", code: core.CodeInvalidIDToken, prepare: idTokenFault(smarttest.IDTokenFutureIAT)},
		{name: "token endpoint refuses", code: core.CodeTokenExchangeFailed, prepare: func(h *harness) {
			h.ehr.SetFaults(smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointToken: 400}})
		}},
		{name: "token endpoint sends malformed JSON", code: core.CodeTokenExchangeFailed, prepare: func(h *harness) {
			h.ehr.SetFaults(smarttest.Faults{MalformedJSON: map[smarttest.Endpoint]bool{smarttest.EndpointToken: true}})
		}},
		{name: "storage down at callback", code: core.CodeStorageUnavailable, do: func(t *testing.T, h *harness) error {
			cb := h.launch("browser-1", &pat1)
			h.store.setFail(errors.New("connection refused"))
			_, err := h.eng.Callback(context.Background(), "browser-1", cb)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}
