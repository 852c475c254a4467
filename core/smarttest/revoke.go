package smarttest

import (
	"net/http"
)

// serveRevoke is the revocation endpoint (RFC 7009): the client
// authenticates as at the token endpoint (a private_key_jwt assertion's
// aud is the token URL), and the token it names stops working. A refresh
// token revokes its whole grant: the refresh token then gets invalid_grant
// and every access token of the grant 401. An access token revokes that
// token alone. A token the server does not know, or that is already
// revoked, is answered 200 as well, as RFC 7009 asks.
func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.writeOAuthError(w, http.StatusBadRequest, "invalid_request", "malformed form body", EndpointRevoke)
		return
	}
	client, err := s.authenticateClient(r, s.root(r)+"/auth/token")
	if err != nil {
		s.writeOAuthError(w, http.StatusUnauthorized, "invalid_client", err.Error(), EndpointRevoke)
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		s.writeOAuthError(w, http.StatusBadRequest, "invalid_request", "token is missing", EndpointRevoke)
		return
	}
	s.mu.Lock()
	s.revokedTokens = append(s.revokedTokens, tok)
	g := s.refreshTokens[tok]
	if g == nil {
		g = s.rotatedRefresh[tok]
	}
	at := s.accessTokens[tok]
	var owner string
	switch {
	case g != nil:
		owner = g.clientID
	case at != nil:
		owner = at.grant.clientID
	}
	if owner != "" && owner != client.ID {
		s.mu.Unlock()
		s.writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", "the token was issued to another client", EndpointRevoke)
		return
	}
	if g != nil {
		g.revoked = true
	}
	if at != nil {
		at.revoked = true
	}
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// RevokedTokens returns the tokens named by requests to the revocation
// endpoint (EndpointRevoke) that authenticated their client, in order of
// arrival, whether or not the server knew them or revoked them. The slice
// is a copy.
func (s *Server) RevokedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.revokedTokens...)
}

// RevocationURL returns the revocation endpoint's URL (RFC 7009).
func (s *Server) RevocationURL() string { return s.URL() + "/auth/revoke" }
