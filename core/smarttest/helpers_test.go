package smarttest_test

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fhirware/smart/core/smarttest"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	callback     = "http://app.example/callback"
	defaultScope = "launch openid fhirUser offline_access patient/*.rs"
)

// start returns a started server closed at the end of the test, with a
// public client "app" registered.
func start(t *testing.T, opts smarttest.Options) *smarttest.Server {
	t.Helper()
	s := smarttest.NewServer(opts)
	t.Cleanup(s.Close)
	s.RegisterClient(smarttest.Client{ID: "app"})
	return s
}

// noRedirect is an HTTP client that returns redirects instead of following.
func noRedirect() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type pkce struct{ verifier, challenge string }

func newPKCE() pkce {
	v := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(v))
	return pkce{v, base64.RawURLEncoding.EncodeToString(sum[:])}
}

// authParams returns a valid authorization request for client; kv pairs
// override (an empty value deletes).
func authParams(s *smarttest.Server, client string, pk pkce, kv ...string) url.Values {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {client},
		"redirect_uri":          {callback},
		"scope":                 {defaultScope},
		"state":                 {"state-1"},
		"nonce":                 {"nonce-1"},
		"aud":                   {s.FHIRBaseURL()},
		"code_challenge":        {pk.challenge},
		"code_challenge_method": {"S256"},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}

// authorize sends an authorization request and returns the status and the
// query of the redirect (nil when there was none).
func authorize(t *testing.T, s *smarttest.Server, q url.Values) (int, url.Values) {
	t.Helper()
	resp, err := noRedirect().Get(s.AuthorizeURL() + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusFound {
		return resp.StatusCode, nil
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != q.Get("redirect_uri") {
		t.Fatalf("redirected to %s, want %s", got, q.Get("redirect_uri"))
	}
	return resp.StatusCode, loc.Query()
}

// code runs a successful authorization request and returns the code.
func code(t *testing.T, s *smarttest.Server, q url.Values) string {
	t.Helper()
	status, cb := authorize(t, s, q)
	if status != http.StatusFound || cb.Get("code") == "" {
		t.Fatalf("authorize: status %d, callback %v", status, cb)
	}
	if cb.Get("state") != q.Get("state") {
		t.Fatalf("state = %q, want %q", cb.Get("state"), q.Get("state"))
	}
	return cb.Get("code")
}

// postToken posts a token request, with Basic credentials when user is set.
func postToken(t *testing.T, s *smarttest.Server, form url.Values, user, pass string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token response: %v", err)
	}
	return resp.StatusCode, body
}

// codeForm is the token request exchanging a code.
func codeForm(c string, pk pkce, kv ...string) url.Values {
	f := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {c},
		"redirect_uri":  {callback},
		"code_verifier": {pk.verifier},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

// login runs a standalone launch for the public client "app" and returns
// the token response.
func login(t *testing.T, s *smarttest.Server, kv ...string) map[string]any {
	t.Helper()
	pk := newPKCE()
	c := code(t, s, authParams(s, "app", pk, kv...))
	status, tok := postToken(t, s, codeForm(c, pk, "client_id", "app"), "", "")
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, tok)
	}
	return tok
}

// fhir sends a FHIR request with a bearer token (none when token is "") and
// decodes a JSON answer into a map.
func fhir(t *testing.T, s *smarttest.Server, token, method, path string, body any, hdr ...string) (*http.Response, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = strings.NewReader(string(b))
	}
	u := path
	if !strings.HasPrefix(path, "http") {
		u = s.FHIRBaseURL() + path
	}
	req, _ := http.NewRequest(method, u, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: %v in %q", method, path, err, b)
		}
	}
	return resp, m
}

// assertion builds a private_key_jwt client assertion.
func assertion(t *testing.T, key crypto.Signer, alg jose.SignatureAlgorithm, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: "client-key"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// verifyIDToken checks an id_token's signature against the server's JWKS and
// returns its claims.
func verifyIDToken(t *testing.T, s *smarttest.Server, idt string) (map[string]any, error) {
	t.Helper()
	resp, err := http.Get(s.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(idt, []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.ES256, jose.ES384})
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if len(set.Keys) == 1 {
		err = tok.Claims(set.Keys[0].Key, &claims)
	} else {
		err = tok.Claims(set, &claims)
	}
	return claims, err
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
