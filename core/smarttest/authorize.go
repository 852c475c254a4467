package smarttest

import (
	"cmp"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// codeLifetime is how long an authorization code can be exchanged.
const codeLifetime = 60 * time.Second

// wrongIssuer is the iss sent on the authorization response under
// Faults.WrongCallbackIss.
const wrongIssuer = "https://wrong-issuer.example/auth"

// authCode is an issued authorization code and what the token endpoint
// checks against it.
type authCode struct {
	clientID    string
	redirectURI string
	challenge   string
	scope       string
	nonce       string
	lc          LaunchContext
	expires     time.Time
	used        bool
	grant       *grant // the grant the code was exchanged for
}

// serveAuthorize is the authorization endpoint. It approves every valid
// request at once: there is no login or consent page.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	clientID, redirectURI := q.Get("client_id"), q.Get("redirect_uri")
	s.mu.Lock()
	client, known := s.clients[clientID]
	authErr, authErrDesc := s.faults.AuthorizeError, s.faults.AuthorizeErrorDescription
	wrongIss := s.faults.WrongCallbackIss
	grantScope := cmp.Or(s.faults.GrantScope, q.Get("scope"))
	s.mu.Unlock()
	if !known {
		authorizePage(w, fmt.Sprintf("unknown client_id %q", clientID))
		return
	}
	target, err := url.Parse(redirectURI)
	if err != nil || !redirectAllowed(client, redirectURI, target) {
		authorizePage(w, fmt.Sprintf("redirect_uri %q is not registered for client %q", redirectURI, clientID))
		return
	}
	root := s.root(r)
	redirect := func(params url.Values) {
		tq := target.Query()
		for k, v := range params {
			tq[k] = v
		}
		if state := q.Get("state"); state != "" {
			tq.Set("state", state)
		}
		switch {
		case wrongIss:
			tq.Set("iss", wrongIssuer)
		case s.opts.AuthorizationResponseIss:
			tq.Set("iss", root+"/auth")
		}
		u := *target
		u.RawQuery = tq.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
	fail := func(code, description string) {
		redirect(url.Values{"error": {code}, "error_description": {description}})
	}

	if q.Get("response_type") != "code" {
		fail("unsupported_response_type", "response_type must be code")
		return
	}
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		fail("invalid_request", "PKCE is required: code_challenge with code_challenge_method S256")
		return
	}
	if aud := q.Get("aud"); aud != root+"/fhir" {
		fail("invalid_request", fmt.Sprintf("aud %q is not this server's FHIR base URL", aud))
		return
	}
	lc := s.opts.StandaloneContext
	if launch := q.Get("launch"); launch != "" {
		s.mu.Lock()
		ctx, ok := s.launches[launch]
		s.mu.Unlock()
		if !ok {
			fail("invalid_request", "unknown launch")
			return
		}
		lc = ctx
	}
	if authErr != "" {
		fail(authErr, authErrDesc)
		return
	}
	code := randomToken(32)
	s.mu.Lock()
	s.codes[code] = &authCode{
		clientID:    clientID,
		redirectURI: redirectURI,
		challenge:   q.Get("code_challenge"),
		scope:       grantScope,
		nonce:       q.Get("nonce"),
		lc:          lc,
		expires:     s.opts.Now().Add(codeLifetime),
	}
	s.mu.Unlock()
	redirect(url.Values{"code": {code}})
}

// redirectAllowed reports whether a client may use a redirect_uri: one of
// its registered ones, or any absolute URL without fragment when it
// registered none.
func redirectAllowed(c Client, raw string, u *url.URL) bool {
	if len(c.RedirectURIs) > 0 {
		return slices.Contains(c.RedirectURIs, raw)
	}
	return u.IsAbs() && u.Host != "" && u.Fragment == ""
}

// authorizePage answers an authorization request that can't be redirected
// back to the client, as an authorization server must.
func authorizePage(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, "<!doctype html>\n<title>Authorization error</title>\n<h1>Authorization error</h1>\n<p>%s</p>\n",
		html.EscapeString(msg))
}
