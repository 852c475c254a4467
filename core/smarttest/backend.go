package smarttest

import (
	"net/http"
	"strings"

	"github.com/fhirware/smart/core/scope"
)

// Refusal is a token request the server refused: the OAuth error code it
// answered (Code, such as "invalid_client") and its error_description,
// which names the check that failed (such as "client_assertion: jti was
// already used").
type Refusal struct {
	Code        string
	Description string
}

// Refusals returns the token requests an endpoint refused since the server
// started or since ResetCounts, in order of arrival: EndpointToken for
// every grant type, EndpointTokenCode, EndpointTokenRefresh or
// EndpointTokenClientCredentials for one. Refusals by Faults (Status,
// FailTimes, TokenError) are not listed. The slice is a copy.
func (s *Server) Refusals(e Endpoint) []Refusal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Refusal(nil), s.refusals[e]...)
}

// refuse answers a token request with an OAuth error and records it under
// each of the endpoints es, for Refusals.
func (s *Server) refuse(w http.ResponseWriter, status int, code, description string, es ...Endpoint) {
	s.mu.Lock()
	for _, e := range es {
		s.refusals[e] = append(s.refusals[e], Refusal{Code: code, Description: description})
	}
	s.mu.Unlock()
	s.writeOAuthError(w, status, code, description, es...)
}

// clientCredentials grants a client_credentials request (SMART Backend
// Services) of a client authenticated by its private_key_jwt assertion:
// the scope asked for must be system scopes the client is registered for
// (Client.SystemScope). It returns the token response, or nil with the
// OAuth error code and description to refuse with.
//
// The access token it issues is system-level: the FHIR server accepts it
// for any patient. It comes without a refresh token (a backend client asks
// for a new access token instead) and without a launch context.
func (s *Server) clientCredentials(root string, c Client, r *http.Request) (resp map[string]any, errCode, desc string) {
	if c.Auth != AuthPrivateKeyJWT {
		return nil, "unauthorized_client", "client_credentials needs a client that authenticates with private_key_jwt (SMART Backend Services)"
	}
	if c.SystemScope == "" {
		return nil, "unauthorized_client", "the client is not registered for client_credentials (no system scopes)"
	}
	requested := strings.Fields(r.PostForm.Get("scope"))
	if len(requested) == 0 {
		return nil, "invalid_scope", "scope is missing"
	}
	for _, sc := range requested {
		if !strings.HasPrefix(sc, "system/") {
			return nil, "invalid_scope", "client_credentials grants system/ scopes only, not " + sc
		}
	}
	if missing := scope.Parse(c.SystemScope).Missing(scope.Parse(strings.Join(requested, " "))); missing != nil {
		return nil, "invalid_scope", "the client is not registered for " + strings.Join(missing, " ")
	}
	g := &grant{clientID: c.ID, scope: strings.Join(requested, " "), system: true}
	resp, desc = s.tokenResponse(root, g)
	if resp == nil {
		return nil, "server_error", desc
	}
	return resp, "", ""
}
