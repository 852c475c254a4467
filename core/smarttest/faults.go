package smarttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"
)

// Endpoint names a part of the server, for [Server.Count] and for [Faults].
type Endpoint string

// The server's endpoints.
const (
	// EndpointDiscovery is GET /fhir/.well-known/smart-configuration.
	EndpointDiscovery Endpoint = "discovery"
	// EndpointMetadata is GET /fhir/metadata, the CapabilityStatement.
	EndpointMetadata Endpoint = "metadata"
	// EndpointAuthorize is GET /auth/authorize.
	EndpointAuthorize Endpoint = "authorize"
	// EndpointToken is POST /auth/token, any grant type.
	EndpointToken Endpoint = "token"
	// EndpointTokenCode is a token request with grant_type
	// authorization_code.
	EndpointTokenCode Endpoint = "token_code"
	// EndpointTokenRefresh is a token request with grant_type
	// refresh_token.
	EndpointTokenRefresh Endpoint = "token_refresh"
	// EndpointTokenClientCredentials is a token request with grant_type
	// client_credentials: SMART Backend Services.
	EndpointTokenClientCredentials Endpoint = "token_client_credentials"
	// EndpointRevoke is POST /auth/revoke, the revocation endpoint (RFC
	// 7009).
	EndpointRevoke Endpoint = "revoke"
	// EndpointJWKS is GET /auth/jwks.
	EndpointJWKS Endpoint = "jwks"
	// EndpointOpenIDConfiguration is GET
	// /auth/.well-known/openid-configuration, the authorization server's
	// OpenID Connect Discovery document.
	EndpointOpenIDConfiguration Endpoint = "openid_configuration"
	// EndpointFHIR is any FHIR request under /fhir other than metadata and
	// discovery: reads, searches, writes and batches.
	EndpointFHIR Endpoint = "fhir"
	// EndpointEHR is the EHR page, GET /.
	EndpointEHR Endpoint = "ehr"
)

// Faults are switches that make the server misbehave, set with
// [Server.SetFaults]. The zero value is a well-behaved server. Maps are keyed
// by endpoint; EndpointTokenCode and EndpointTokenRefresh select one grant
// type, EndpointToken both.
type Faults struct {
	// Latency delays every answer of every endpoint.
	Latency time.Duration
	// Status makes an endpoint answer with this HTTP status and an error
	// body: OAuth-shaped JSON for the authorization server, an
	// OperationOutcome for the FHIR server.
	Status map[Endpoint]int
	// FailTimes makes an endpoint answer 500 this many times, then
	// normally.
	FailTimes map[Endpoint]int
	// MalformedJSON makes an endpoint's JSON bodies truncated, invalid JSON.
	MalformedJSON map[Endpoint]bool
	// Oversize pads an endpoint's JSON bodies with an extra field to at
	// least this many bytes.
	Oversize map[Endpoint]int
	// DocumentFields sets top-level fields of a discovery document,
	// replacing the server's own values, as a hostile or broken EHR would:
	// keyed by EndpointDiscovery, EndpointOpenIDConfiguration or
	// EndpointMetadata (the CapabilityStatement), then by field name. A
	// nil value removes the field, so {"issuer": nil, "jwks_uri": nil}
	// makes a smart-configuration without OpenID Connect. Values are
	// encoded as JSON as they are.
	DocumentFields map[Endpoint]map[string]any
	// Drip writes every JSON body one byte per Drip, flushing each byte.
	Drip time.Duration
	// AuthorizeError makes the authorize endpoint redirect back with this
	// error code (such as "access_denied") instead of a code.
	AuthorizeError string
	// AuthorizeErrorDescription is the error_description sent with
	// AuthorizeError.
	AuthorizeErrorDescription string
	// GrantScope, when set, is the scope every authorization grants
	// instead of the requested one, as an EHR that grants less than asked
	// (or another version's scopes) does. The token response names it, and
	// it decides the id_token and the refresh token as a requested scope
	// would.
	GrantScope string
	// WrongCallbackIss adds an RFC 9207 iss parameter with a wrong value to
	// the authorization response.
	WrongCallbackIss bool
	// IDToken forges issued id_tokens in one of the listed ways.
	IDToken IDTokenFault
	// ExpiresIn, when set, replaces the expires_in of every token response
	// with this JSON text, as it is: a huge number (10000000000), a
	// fraction (3600.5), a string ("3600"), to test how clients read
	// lifetimes. The server's own tokens keep Options.AccessTokenLifetime.
	ExpiresIn json.RawMessage
	// TokenError makes the token endpoint answer 400 with this error code
	// (any text, registered or not) and TokenErrorDescription, instead of
	// tokens, to test what clients show of an EHR's words.
	TokenError string
	// TokenErrorDescription is the error_description sent with TokenError.
	TokenErrorDescription string
	// Unauthorized makes the next N FHIR requests answer 401 even with a
	// valid token.
	Unauthorized int
	// StrictRotation makes each refresh issue a new refresh token; presenting
	// an already rotated refresh token revokes the whole grant: its access
	// tokens stop working and it can't be refreshed any more.
	StrictRotation bool
	// RevokeRefresh makes every refresh_token grant answer invalid_grant.
	RevokeRefresh bool
	// NextLinkOrigin replaces the server's origin ("http://host:port") in
	// the next links of search Bundles, to test that clients don't follow
	// them to another origin with the token.
	NextLinkOrigin string
}

// SetFaults replaces the fault switches; it is safe to call while requests
// are in flight. The maps are copied.
func (s *Server) SetFaults(f Faults) {
	f.Status = maps.Clone(f.Status)
	f.FailTimes = maps.Clone(f.FailTimes)
	f.MalformedJSON = maps.Clone(f.MalformedJSON)
	f.Oversize = maps.Clone(f.Oversize)
	if f.DocumentFields != nil {
		fields := make(map[Endpoint]map[string]any, len(f.DocumentFields))
		for e, m := range f.DocumentFields {
			fields[e] = maps.Clone(m)
		}
		f.DocumentFields = fields
	}
	f.ExpiresIn = bytes.Clone(f.ExpiresIn)
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// endpoint wraps a handler with counting and the endpoint faults.
func (s *Server) endpoint(e Endpoint, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e == EndpointFHIR {
			s.mu.Lock()
			if tok := bearerToken(r); tok != "" {
				s.fhirTokens = append(s.fhirTokens, tok)
			}
			s.fhirAccepts = append(s.fhirAccepts, r.Header.Get("Accept"))
			s.mu.Unlock()
		}
		if s.enter(w, r, e, true) {
			h(w, r)
		}
	})
}

// enter counts a request for e, sleeps for Latency when asked, and answers
// with a Status or FailTimes fault. It reports whether the handler should
// go on.
func (s *Server) enter(w http.ResponseWriter, r *http.Request, e Endpoint, sleep bool) bool {
	s.mu.Lock()
	s.counts[e]++
	latency := s.faults.Latency
	s.mu.Unlock()
	if sleep && !s.sleep(r.Context(), latency) {
		return false
	}
	s.mu.Lock()
	status := s.faults.Status[e]
	if status == 0 && s.faults.FailTimes[e] > 0 {
		s.faults.FailTimes[e]--
		status = http.StatusInternalServerError
	}
	s.mu.Unlock()
	if status == 0 {
		return true
	}
	if e == EndpointFHIR || e == EndpointMetadata {
		s.writeOutcome(w, status, "exception", fmt.Sprintf("fault injected: status %d", status), e)
	} else {
		s.writeOAuthError(w, status, oauthErrorCode(status), fmt.Sprintf("fault injected: status %d", status), e)
	}
	return false
}

func oauthErrorCode(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "invalid_client"
	case status == http.StatusForbidden:
		return "access_denied"
	case status >= 500 && status != http.StatusInternalServerError:
		return "temporarily_unavailable"
	case status >= 500:
		return "server_error"
	default:
		return "invalid_request"
	}
}

// sleep waits for d, the request's end or the server's Close, and reports
// whether the full d passed.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-s.done:
	}
	return false
}

// writeJSON writes v as a JSON body with the faults of the given endpoints
// applied: MalformedJSON, Oversize and Drip.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, contentType string, v any, es ...Endpoint) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "smarttest: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	drip := s.faults.Drip
	malformed, pad := false, 0
	for _, e := range es {
		malformed = malformed || s.faults.MalformedJSON[e]
		pad = max(pad, s.faults.Oversize[e])
	}
	s.mu.Unlock()
	if pad > len(body) && bytes.HasPrefix(body, []byte("{")) {
		field := `"smarttest_padding":"` + strings.Repeat("x", pad-len(body)) + `"`
		if len(body) > 2 {
			field += ","
		}
		body = append([]byte("{"+field), body[1:]...)
	}
	if malformed {
		body = append(body[:len(body)/2:len(body)/2], `<"`...)
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	if drip <= 0 {
		w.Write(body)
		return
	}
	rc := http.NewResponseController(w)
	ctx := context.Background()
	if r != nil {
		ctx = r.Context()
	}
	for i := range body {
		if _, err := w.Write(body[i : i+1]); err != nil {
			return
		}
		rc.Flush()
		if i < len(body)-1 && !s.sleep(ctx, drip) {
			return
		}
	}
}

// withDocumentFields applies the DocumentFields fault of endpoint e to a
// discovery document.
func (s *Server) withDocumentFields(e Endpoint, doc map[string]any) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.faults.DocumentFields[e] {
		if v == nil {
			delete(doc, k)
		} else {
			doc[k] = v
		}
	}
	return doc
}

// writeOAuthError writes an OAuth error body: {"error", "error_description"}.
func (s *Server) writeOAuthError(w http.ResponseWriter, status int, code, description string, es ...Endpoint) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="smarttest"`)
	}
	w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(w, nil, status, "application/json", map[string]string{
		"error": code, "error_description": description,
	}, es...)
}

// writeOutcome writes a FHIR OperationOutcome with one error issue.
func (s *Server) writeOutcome(w http.ResponseWriter, status int, code, diagnostics string, es ...Endpoint) {
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="smarttest"`)
	}
	s.writeJSON(w, nil, status, fhirJSON, operationOutcome(code, diagnostics), es...)
}

func operationOutcome(code, diagnostics string) map[string]any {
	return outcome("error", code, diagnostics)
}

// outcome is an OperationOutcome with an issue for each diagnostics.
func outcome(severity, code string, diagnostics ...string) map[string]any {
	issues := make([]any, len(diagnostics))
	for i, d := range diagnostics {
		issues[i] = map[string]any{"severity": severity, "code": code, "diagnostics": d}
	}
	return map[string]any{"resourceType": "OperationOutcome", "issue": issues}
}
