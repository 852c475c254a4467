package smarttest

import "errors"

// IssueAccessToken issues an access token for clientID, as the token
// endpoint would after an authorization with scope and launch context lc,
// and returns it. The FHIR server accepts it like any other: it expires
// after Options.AccessTokenLifetime, and ExpireAccessTokens and
// Faults.Unauthorized apply. No browser, code or client authentication is
// involved, and clientID need not be registered: use it to test a FHIR
// client on its own, with a bearer token in hand
// (oauth2.StaticTokenSource, say). The server must be started.
func (s *Server) IssueAccessToken(clientID, scope string, lc LaunchContext) (string, error) {
	root := s.URL()
	if root == "" {
		return "", errors.New("smarttest: IssueAccessToken before the server is started")
	}
	resp, desc := s.tokenResponse(root, &grant{clientID: clientID, scope: scope, lc: lc})
	if resp == nil {
		return "", errors.New("smarttest: " + desc)
	}
	return resp["access_token"].(string), nil
}
