package core

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
)

// The token endpoint is called by hand rather than through oauth2.Config:
// x/oauth2's refresh path cannot carry a client assertion (private_key_jwt),
// and its Token hides the raw response, where SMART's launch context lives.
// Errors keep x/oauth2's *oauth2.RetrieveError shape, so errors.As works as
// with x/oauth2.

// tokenResponse is a token endpoint's answer, with SMART's launch context.
type tokenResponse struct {
	AccessToken  string      `json:"access_token"`
	TokenType    string      `json:"token_type"`
	ExpiresIn    json.Number `json:"expires_in"`
	RefreshToken string      `json:"refresh_token"`
	Scope        string      `json:"scope"`
	IDToken      string      `json:"id_token"`

	// raw holds every field, for the launch context and its extras.
	raw map[string]json.RawMessage
	// fhirContext is the fhirContext array, item by item; nil when there
	// is none or it is malformed (dropped, not fatal).
	fhirContext []json.RawMessage
}

// requestToken POSTs form to the issuer's token endpoint with the issuer's
// client authentication.
func (e *Engine) requestToken(ctx context.Context, op string, code Code, is *Issuer, as *authServer, form url.Values) (_ *tokenResponse, err error) {
	ctx, span := e.tel.start(ctx, spanToken, attrGrantType.String(form.Get("grant_type")), attrIssuer.String(issuerHost(is.URL)))
	defer func() { endSpan(span, err) }()
	resp, err := e.postForm(ctx, is, as, as.disc.TokenEndpoint, form)
	if err != nil {
		return nil, newError(op, code, "the token endpoint could not be reached", err)
	}
	body, err := readBody(resp)
	if err != nil {
		return nil, newError(op, code, "the token endpoint's answer could not be read", err)
	}
	return parseTokenResponse(op, code, resp, body)
}

// postForm POSTs form to one of the issuer's OAuth endpoints (token,
// revocation) with the issuer's client authentication, through send: a
// client assertion is signed anew for every attempt, its aud the token
// endpoint, the audience SMART names for assertions.
func (e *Engine) postForm(ctx context.Context, is *Issuer, as *authServer, endpoint string, form url.Values) (*http.Response, error) {
	return e.send(ctx, is, func() (*http.Request, error) {
		v := maps.Clone(form)
		header := http.Header{}
		if err := e.authenticate(is, as.disc.TokenEndpoint, v, header); err != nil {
			return nil, err
		}
		req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(v.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header = header
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		return req, nil
	})
}

// parseTokenResponse reads a token endpoint's answer: an error status or an
// error field gives an *Error wrapping *oauth2.RetrieveError.
func parseTokenResponse(op string, code Code, resp *http.Response, body []byte) (*tokenResponse, error) {
	var tr tokenResponse
	jsonErr := json.Unmarshal(body, &tr.raw)
	if jsonErr == nil {
		jsonErr = json.Unmarshal(body, &tr)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 || (jsonErr == nil && hasField(tr.raw, "error")) {
		// The response is kept without its request, whose header and body
		// carry the client's credentials, the code or the refresh token.
		kept := *resp
		kept.Request, kept.Body = nil, http.NoBody
		re := &oauth2.RetrieveError{Response: &kept, Body: body}
		var oe struct {
			Error            string `json:"error"`
			ErrorDescription string `json:"error_description"`
			ErrorURI         string `json:"error_uri"`
		}
		if json.Unmarshal(body, &oe) == nil {
			re.ErrorCode, re.ErrorDescription, re.ErrorURI = oe.Error, printable(oe.ErrorDescription), oe.ErrorURI
		}
		err := &Error{Op: op, Code: code, status: resp.StatusCode, Err: &tokenEndpointError{re}}
		err.Description = fmt.Sprintf("the token endpoint answered %d", resp.StatusCode)
		if oauthErrorCodes[re.ErrorCode] {
			err.Description += " " + re.ErrorCode
		}
		return nil, err
	}
	if jsonErr != nil {
		return nil, newError(op, code, "the token endpoint's answer is not valid JSON", jsonErr)
	}
	if tr.AccessToken == "" {
		return nil, newError(op, code, "the token endpoint's answer has no access_token", nil)
	}
	if len(tr.Scope) > maxGrantedScopeLen {
		return nil, newError(op, code, fmt.Sprintf("the token endpoint's answer has a scope longer than %d KiB", maxGrantedScopeLen>>10), nil)
	}
	if len(tr.raw) > maxTokenFields {
		return nil, newError(op, code, fmt.Sprintf("the token endpoint's answer has %d fields, more than %d", len(tr.raw), maxTokenFields), nil)
	}
	if raw, ok := tr.raw["fhirContext"]; ok && json.Unmarshal(raw, &tr.fhirContext) == nil && len(tr.fhirContext) > maxTokenFields {
		return nil, newError(op, code, fmt.Sprintf("the token endpoint's answer has %d fhirContext items, more than %d", len(tr.fhirContext), maxTokenFields), nil)
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return nil, newError(op, code, "the token endpoint issued a token that is not a Bearer token; only Bearer tokens are supported",
			untrustedText("token_type", tr.TokenType))
	}
	return &tr, nil
}

// maxGrantedScopeLen bounds the scope a token response may grant. The
// scope is kept with the launch and parsed whenever the app asks what was
// granted: an EHR's scope of a megabyte must not cost every request.
// Real grants, even of every resource type in two contexts, are a few
// KiB.
const maxGrantedScopeLen = 64 << 10

// maxTokenFields bounds the fields of a token response and the items of
// its fhirContext, which the launch context keeps one by one: within the
// 64 KiB of a launch record, tens of thousands of tiny ones ({} or "a":0)
// decode to ten times that, in each of the thousands of records the engine
// keeps decoded and in each copy LaunchContext makes. Real responses carry
// a few dozen fields and a few items.
const maxTokenFields = 128

// maxAccessTokenLifetime bounds the lifetime an access token is taken to
// have: an expires_in above it counts as this much (30 days). An EHR's
// absurd lifetime (10000000000 seconds overflows a time.Duration) must not
// turn into an expiry in the past, which would refresh on every request.
// A token the EHR revokes sooner is still refreshed on its 401.
const maxAccessTokenLifetime = 30 * 24 * time.Hour

// expiry is when the access token expires: from expires_in, so opaque
// tokens work. Zero when the server gave no lifetime, or one that is not a
// positive number. Fractions of a second are dropped; any lifetime above
// maxAccessTokenLifetime, however large, is maxAccessTokenLifetime.
func (tr *tokenResponse) expiry(now time.Time) time.Time {
	if tr.ExpiresIn == "" {
		return time.Time{}
	}
	secs, err := strconv.ParseFloat(string(tr.ExpiresIn), 64)
	if (err != nil && !errors.Is(err, strconv.ErrRange)) || math.IsNaN(secs) || secs < 1 {
		return time.Time{} // malformed, zero or negative; ±Inf comes with ErrRange
	}
	d := maxAccessTokenLifetime
	if secs < maxAccessTokenLifetime.Seconds() {
		d = time.Duration(secs) * time.Second
	}
	return now.Add(d)
}

// untrustedText is text a request or an EHR supplied, named by what,
// quoted, shortened and stripped of control characters, as an error to
// keep as another error's cause: logs show it, pages never do.
func untrustedText(what, s string) error {
	return errors.New(what + " " + quoteShort(printable(s)))
}

// oauthErrorCodes are the error codes OAuth 2.0 and OpenID Connect
// register for the authorization and token endpoints (RFC 6749 sections
// 4.1.2.1 and 5.2, OpenID Connect Core section 3.1.2.6). An EHR's error
// code is shown to people only when it is one of these: any other text is
// the EHR's (or an attacker's) own words, kept in the error's cause for
// logs but never in its Description, which pages show.
var oauthErrorCodes = map[string]bool{
	"invalid_request": true, "unauthorized_client": true, "access_denied": true,
	"unsupported_response_type": true, "invalid_scope": true, "server_error": true,
	"temporarily_unavailable": true, "invalid_client": true, "invalid_grant": true,
	"unsupported_grant_type": true, "interaction_required": true, "login_required": true,
	"account_selection_required": true, "consent_required": true, "invalid_request_uri": true,
	"invalid_request_object": true, "request_not_supported": true,
	"request_uri_not_supported": true, "registration_not_supported": true,
}

// tokenEndpointError wraps *oauth2.RetrieveError for errors.As, with a
// message that leaves out the response body (a broken server could echo
// secrets into it).
type tokenEndpointError struct{ re *oauth2.RetrieveError }

func (t *tokenEndpointError) Error() string {
	s := "oauth2: " + t.re.Response.Status
	if c := printable(t.re.ErrorCode); c != "" {
		s += " " + c
	}
	if t.re.ErrorDescription != "" {
		s += ": " + printable(t.re.ErrorDescription)
	}
	return s
}

func (t *tokenEndpointError) Unwrap() error { return t.re }

// authenticate adds the issuer's client authentication to a token request.
func (e *Engine) authenticate(is *Issuer, tokenURL string, form url.Values, header http.Header) error {
	a := &is.Auth
	switch a.method {
	case authClientSecretBasic:
		// RFC 6749 section 2.3.1: form-encode both parts before Basic.
		header.Set("Authorization", "Basic "+basicAuth(url.QueryEscape(is.ClientID), url.QueryEscape(string(a.Secret))))
	case authClientSecretPost:
		form.Set("client_id", is.ClientID)
		form.Set("client_secret", string(a.Secret))
	case authPrivateKeyJWT:
		assertion, err := e.clientAssertion(is, tokenURL)
		if err != nil {
			return err
		}
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", assertion)
	default:
		form.Set("client_id", is.ClientID)
	}
	return nil
}

// clientAssertion signs a private_key_jwt assertion: iss = sub = client id,
// aud = the token URL, a fresh jti, exp five minutes ahead.
func (e *Engine) clientAssertion(is *Issuer, tokenURL string) (string, error) {
	a := &is.Auth
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if a.KeyID != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), a.KeyID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.SignatureAlgorithm(a.alg),
		Key:       cryptosigner.Opaque(a.Signer),
	}, opts)
	if err != nil {
		return "", fmt.Errorf("client assertion signer: %w", err)
	}
	now := e.cfg.Now()
	claims := jwt.Claims{
		Issuer:   is.ClientID,
		Subject:  is.ClientID,
		Audience: jwt.Audience{tokenURL},
		ID:       rand.Text(),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(5 * time.Minute)),
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("signing the client assertion: %w", err)
	}
	return s, nil
}

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// hasField reports whether a JSON object has the field k with a value other
// than null.
func hasField(raw map[string]json.RawMessage, k string) bool {
	v, ok := raw[k]
	return ok && string(v) != "null"
}
