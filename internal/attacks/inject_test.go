package attacks

import (
	"crypto/rand"
	"crypto/rsa"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// injector is a hostile EHR that does not redeem the codes it steals: its
// authorize endpoint forwards the victim to the honest EHR with the PKCE
// challenge and nonce of the attacker's own launch at that EHR, and its
// token endpoint keeps the code, for the attacker to inject into the
// callback of that launch, where the app redeems it with the honest EHR's
// credentials. Client authentication cannot stop it; only a callback that
// proves its server (iss, or a redirect URI of its own) does.
type injector struct {
	srv    *httptest.Server
	honest *smarttest.Server

	mu               sync.Mutex
	challenge, nonce string
	codes            []string
}

func newInjector(t *testing.T, honest *smarttest.Server) *injector {
	in := &injector{honest: honest}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fhir/.well-known/smart-configuration", func(w http.ResponseWriter, r *http.Request) {
		// A key set of its own, as any EHR the app's openid launch
		// accepts names; the launch never gets as far as using it.
		writeJSON(w, map[string]any{
			"issuer":                 in.srv.URL + "/auth",
			"jwks_uri":               in.srv.URL + "/auth/jwks",
			"authorization_endpoint": in.srv.URL + "/auth/authorize",
			"token_endpoint":         in.srv.URL + "/auth/token",
		})
	})
	mux.HandleFunc("GET /auth/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		q.Set("aud", honest.FHIRBaseURL())
		in.mu.Lock()
		q.Set("code_challenge", in.challenge)
		q.Set("nonce", in.nonce)
		in.mu.Unlock()
		q.Del("launch") // a standalone launch at the honest EHR
		http.Redirect(w, r, honest.AuthorizeURL()+"?"+q.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /auth/token", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		in.mu.Lock()
		in.codes = append(in.codes, form.Get("code"))
		in.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant"}`)
	})
	in.srv = httptest.NewServer(mux)
	t.Cleanup(in.srv.Close)
	return in
}

func (in *injector) stolen() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.codes...)
}

// codeInjection is the mix-up followed by code injection, against an
// honest EHR whose client is confidential (a secret, or private_key_jwt)
// and which sends no iss.
func codeInjection(name string, anyIssuer bool) attack {
	var in *injector
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return attack{
		name:   name,
		status: 400, code: core.CodeInvalidRequest,
		setup: setup{
			ehr: smarttest.Options{StandaloneContext: smarttest.LaunchContext{Patient: "pat-1", FHIRUser: "Practitioner/prac-1"}},
			cfg: func(e *env, c *adapters.Config) {
				in = newInjector(e.t, e.ehr)
				if anyIssuer {
					e.ehr.RegisterClient(smarttest.Client{ID: "app", Auth: smarttest.AuthPrivateKeyJWT, PublicKey: &key.PublicKey})
					auth := core.ClientAuth{Signer: key, KeyID: "k1"}
					c.Issuers = []core.Issuer{{URL: e.ehr.FHIRBaseURL(), Auth: auth}}
					c.AllowAnyIssuer, c.AllowPrivateNetworks = true, true
					c.DefaultIssuer = core.Issuer{Auth: auth}
					return
				}
				e.ehr.RegisterClient(smarttest.Client{ID: "app", Auth: smarttest.AuthClientSecretBasic, Secret: "honest-secret"})
				c.Issuers = []core.Issuer{
					{URL: e.ehr.FHIRBaseURL(), Auth: core.ClientAuth{Secret: "honest-secret"}},
					{URL: in.srv.URL + "/fhir"}, // the hostile EHR, a public client
				}
			},
		},
		do: func(t *testing.T, e *env) *response {
			// 1. The attacker starts a launch at the honest EHR in its own
			// browser and keeps its state, PKCE challenge and nonce.
			attacker := e.browser()
			r := attacker.get(e.url("/fhir/launch?iss=" + url.QueryEscape(e.iss)))
			if r.StatusCode != http.StatusFound {
				t.Fatalf("the attacker's launch: %d %s", r.StatusCode, r.body)
			}
			authz, _ := url.Parse(r.Header.Get("Location"))
			aq := authz.Query()
			in.mu.Lock()
			in.challenge, in.nonce = aq.Get("code_challenge"), aq.Get("nonce")
			in.mu.Unlock()
			// 2. The victim is lured into a launch from the hostile EHR,
			// which forwards it to the honest one.
			victim := e.browser().followAll(e.url("/fhir/launch?iss=" + url.QueryEscape(in.srv.URL+"/fhir")))
			// 3. Whatever code reached the attacker goes into the
			// callback of the attacker's own launch.
			for _, code := range in.stolen() {
				cb := e.url("/fhir/callback?" + url.Values{"code": {code}, "state": {aq.Get("state")}, "iss": {e.ehr.AuthIssuer()}}.Encode())
				if page := attacker.followAll(cb); page.StatusCode == http.StatusOK && strings.Contains(page.body, "pat-1") {
					t.Errorf("account takeover: the attacker's browser reads the victim's patient at the honest EHR")
				}
			}
			return victim
		},
		check: func(t *testing.T, e *env, r *response) {
			if n := len(in.stolen()); n != 0 {
				t.Errorf("%d codes of the honest EHR reached the hostile token endpoint", n)
			}
		},
	}
}
