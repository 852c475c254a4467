package smarttest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"time"
)

// grant is what one authorization gave a client: its scope and launch
// context, shared by every token issued from it.
type grant struct {
	clientID string
	scope    string
	nonce    string
	lc       LaunchContext
	revoked  bool
	refresh  string // the current refresh token, "" when none
	system   bool   // a client_credentials grant (Backend Services)
}

// accessToken is an issued access token.
type accessToken struct {
	grant   *grant
	expires time.Time
	expired bool // set by ExpireAccessTokens
	revoked bool // at the revocation endpoint
}

func (g *grant) hasScope(scopes ...string) bool {
	have := strings.Fields(g.scope)
	for _, sc := range scopes {
		if slices.Contains(have, sc) {
			return true
		}
	}
	return false
}

// randomToken returns n random bytes, base64url encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// serveToken is the token endpoint: authorization_code and refresh_token
// grants, with the client authenticated by its registered method.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.writeOAuthError(w, http.StatusBadRequest, "invalid_request", "malformed form body", EndpointToken)
		return
	}
	var sub Endpoint
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "authorization_code":
		sub = EndpointTokenCode
	case "refresh_token":
		sub = EndpointTokenRefresh
	case "client_credentials":
		sub = EndpointTokenClientCredentials
	default:
		s.refuse(w, http.StatusBadRequest, "unsupported_grant_type",
			"grant_type must be authorization_code, refresh_token or client_credentials", EndpointToken)
		return
	}
	if !s.enter(w, r, sub, false) {
		return
	}
	root := s.root(r)
	client, err := s.authenticateClient(r, root+"/auth/token")
	if err != nil {
		s.refuse(w, http.StatusUnauthorized, "invalid_client", err.Error(), EndpointToken, sub)
		return
	}
	s.mu.Lock()
	tokenError, tokenErrorDesc := s.faults.TokenError, s.faults.TokenErrorDescription
	s.mu.Unlock()
	if tokenError != "" {
		s.writeOAuthError(w, http.StatusBadRequest, tokenError, tokenErrorDesc, EndpointToken, sub)
		return
	}
	var resp map[string]any
	var desc string
	errCode := "invalid_grant"
	switch sub {
	case EndpointTokenCode:
		resp, desc = s.exchangeCode(root, client, r)
	case EndpointTokenRefresh:
		resp, desc = s.refresh(root, client, r)
	default:
		resp, errCode, desc = s.clientCredentials(root, client, r)
	}
	if resp == nil {
		s.refuse(w, http.StatusBadRequest, errCode, desc, EndpointToken, sub)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	s.writeJSON(w, r, http.StatusOK, "application/json", resp, EndpointToken, sub)
}

// exchangeCode redeems an authorization code. It returns the token response,
// or nil and the reason for invalid_grant.
func (s *Server) exchangeCode(root string, c Client, r *http.Request) (map[string]any, string) {
	form := r.PostForm
	s.mu.Lock()
	ac, ok := s.codes[form.Get("code")]
	if ok && ac.used {
		// A code used twice revokes what it was exchanged for (RFC 6749 4.1.2).
		if ac.grant != nil {
			ac.grant.revoked = true
		}
		s.mu.Unlock()
		return nil, "authorization code was already used"
	}
	if ok {
		ac.used = true
	}
	s.mu.Unlock()
	switch {
	case !ok:
		return nil, "unknown authorization code"
	case !s.opts.Now().Before(ac.expires):
		return nil, "authorization code expired"
	case ac.clientID != c.ID:
		return nil, "authorization code was issued to another client"
	case form.Get("redirect_uri") != ac.redirectURI:
		return nil, "redirect_uri differs from the authorization request's"
	}
	sum := sha256.Sum256([]byte(form.Get("code_verifier")))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(ac.challenge)) != 1 {
		return nil, "code_verifier does not match the code_challenge"
	}
	g := &grant{clientID: c.ID, scope: ac.scope, nonce: ac.nonce, lc: ac.lc}
	s.mu.Lock()
	ac.grant = g
	if g.hasScope("offline_access", "online_access") {
		g.refresh = randomToken(32)
		s.refreshTokens[g.refresh] = g
	}
	s.mu.Unlock()
	return s.tokenResponse(root, g)
}

// refresh redeems a refresh token. It returns the token response, or nil and
// the reason for invalid_grant.
func (s *Server) refresh(root string, c Client, r *http.Request) (map[string]any, string) {
	g, desc := s.redeemRefresh(r.PostForm.Get("refresh_token"), c.ID)
	if g == nil {
		return nil, desc
	}
	return s.tokenResponse(root, g)
}

// redeemRefresh finds the grant of a refresh token, rotating the token under
// Faults.StrictRotation and revoking the grant when a rotated one comes back.
func (s *Server) redeemRefresh(rt, clientID string) (*grant, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.RevokeRefresh {
		return nil, "refresh token revoked"
	}
	g, ok := s.refreshTokens[rt]
	if !ok {
		if old, rotated := s.rotatedRefresh[rt]; rotated {
			old.revoked = true
			return nil, "refresh token was already rotated; the grant is revoked"
		}
		return nil, "unknown refresh token"
	}
	switch {
	case g.revoked:
		return nil, "grant revoked"
	case g.clientID != clientID:
		return nil, "refresh token was issued to another client"
	}
	if s.faults.StrictRotation {
		delete(s.refreshTokens, rt)
		s.rotatedRefresh[rt] = g
		g.refresh = randomToken(32)
		s.refreshTokens[g.refresh] = g
	}
	return g, ""
}

// tokenResponse issues a new access token (and id_token when the scope has
// openid) for a grant and returns the token response.
func (s *Server) tokenResponse(root string, g *grant) (map[string]any, string) {
	now := s.opts.Now()
	expires := now.Add(s.opts.AccessTokenLifetime)
	s.mu.Lock()
	fault := s.faults.IDToken
	expiresIn := s.faults.ExpiresIn
	refresh := g.refresh
	s.mu.Unlock()

	at := randomToken(32)
	if s.opts.JWTAccessTokens {
		var err error
		at, err = signJWT("RS256", s.keys.rsa, KeyIDRSA, map[string]any{
			"iss": root + "/auth", "sub": subjectFor(root, g.lc.FHIRUser), "aud": root + "/fhir",
			"client_id": g.clientID, "scope": g.scope, "jti": randomToken(16),
			"iat": now.Unix(), "exp": expires.Unix(),
		})
		if err != nil {
			return nil, "signing the access token: " + err.Error()
		}
	}
	s.mu.Lock()
	s.accessTokens[at] = &accessToken{grant: g, expires: expires}
	s.mu.Unlock()

	resp := map[string]any{
		"access_token": at,
		"token_type":   "Bearer",
		"expires_in":   int(s.opts.AccessTokenLifetime / time.Second),
		"scope":        g.scope,
	}
	if expiresIn != nil {
		resp["expires_in"] = expiresIn
	}
	if refresh != "" {
		resp["refresh_token"] = refresh
	}
	if g.hasScope("openid") && fault != IDTokenMissing {
		idt, err := s.newIDToken(root, g, fault)
		if err != nil {
			return nil, "signing the id_token: " + err.Error()
		}
		resp["id_token"] = idt
	}
	if g.system {
		return resp, "" // no user, no launch: no launch context
	}
	lc := g.lc
	resp["need_patient_banner"] = lc.NeedPatientBanner
	for k, v := range map[string]string{
		"patient": lc.Patient, "encounter": lc.Encounter, "smart_style_url": lc.SmartStyleURL,
		"intent": lc.Intent, "tenant": lc.Tenant,
	} {
		if v != "" {
			resp[k] = v
		}
	}
	if lc.FHIRContext != nil {
		resp["fhirContext"] = lc.FHIRContext
	}
	for k, v := range lc.Extra {
		resp[k] = v
	}
	return resp, ""
}
