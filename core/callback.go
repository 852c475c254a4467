package core

import (
	"context"
	"errors"
	"net/url"
	"strings"
)

// CallbackRequest is the EHR's answer to the authorize request, as the
// browser brings it to the callback URL.
type CallbackRequest struct {
	Code  string
	State string
	// Issuer is the RFC 9207 iss parameter, when the EHR sends one.
	Issuer string
	// Query is the callback URL's whole query. When issuers have redirect
	// URIs of their own (Issuer.CallbackURL), the parameters that tell
	// them apart must be in it with the launch's values. The adapters set
	// it; a caller of Callback that leaves it nil can only finish launches
	// whose redirect_uri is Config.CallbackURL.
	Query url.Values
	// BeforeStore, when set, is called once the code is exchanged and the
	// id_token verified, with the launch context, before anything is
	// stored: an error stops the callback (an *Error as it is, any other
	// as invalid_state) and no launch is stored, so nobody ever sees it.
	// The adapters renew the browser session's token here, against
	// session fixation, so that no token planted before the callback can
	// see the launch even for a moment; and check that a callback
	// finished through an old token's forward was authorized by the same
	// user.
	BeforeStore func(ctx context.Context, lc LaunchContext) error
	// Error and ErrorDescription are set when the EHR refused.
	Error            string
	ErrorDescription string
}

// CallbackResult is a finished launch.
type CallbackResult struct {
	// Handle is the new launch's opaque handle.
	Handle string
	// RedirectURL is Config.RedirectURL with the handle added as
	// HandleParam: where to send the browser next.
	RedirectURL string
	// Context is the launch context.
	Context LaunchContext
}

// Callback finishes a launch. The state must name a pending launch of this
// browser session that has not expired; it is deleted before anything else
// is done, so it cannot be replayed. The code is exchanged with the
// issuer's client authentication and PKCE verifier, the id_token (when
// there is one) is verified, and the launch is stored under a new handle.
//
// When the EHR granted openid, an id_token is required: a token response
// without one fails with CodeInvalidIDToken. What was granted is the token
// response's scope or, when the response names none, the scope the launch
// asked for (RFC 6749 section 5.1), so a Config.Scope with openid, such as
// DefaultScope, requires an id_token unless the EHR says it withheld openid.
// The id_token's lifetime may be at most MaxIDTokenLifetime.
//
// An EHR's refusal (error) gives CodeAuthorizationDenied. Its Description
// names the OAuth error code only when it is a registered one (such as
// access_denied); the EHR's other words (error, error_description) stay in
// the error's cause, for logs, and are never shown.
//
// Against session fixation, the app renews the browser session's
// identifier in req.BeforeStore, before the launch is stored (the adapters
// do), so that no identifier planted in the browser ever names a session
// that holds the launch.
func (s *Session) Callback(ctx context.Context, req CallbackRequest) (*CallbackResult, error) {
	const op = "callback"
	e := s.engine
	for _, v := range []string{req.Code, req.State, req.Issuer, req.Error, req.ErrorDescription} {
		if len(v) > maxParamLen {
			return nil, newError(op, CodeInvalidRequest, "a callback parameter is too long", nil)
		}
	}
	if s.id == "" {
		return nil, newError(op, CodeNoSession, "the request has no browser session; cookies may be blocked", nil)
	}
	if req.Error != "" {
		// The EHR's words are shown only for a refusal of one of this
		// session's launches: anyone can link to the callback with an
		// error of their own. The pending launch is burnt: single use.
		var p pendingLaunch
		if req.State == "" || e.takePending(ctx, s.store, op, s.id, req.State, &p) != nil || p.Session != s.id {
			return nil, newError(op, CodeInvalidState, "the callback reports an error, but its state matches no pending launch of this browser session", nil)
		}
		// The page names the error code only when it is a registered one;
		// the EHR's own words, which anyone who can make the EHR redirect
		// can choose, stay in the cause, for logs.
		desc := "the EHR refused the authorization"
		if oauthErrorCodes[req.Error] {
			desc += ": " + req.Error
		}
		said := "the EHR said: error " + quoteShort(printable(req.Error))
		if req.ErrorDescription != "" {
			said += ", error_description " + quoteShort(printable(req.ErrorDescription))
		}
		return nil, newError(op, CodeAuthorizationDenied, desc, errors.New(said))
	}
	if req.State == "" {
		return nil, newError(op, CodeInvalidRequest, "the callback has no state", nil)
	}
	if req.Code == "" {
		return nil, newError(op, CodeInvalidRequest, "the callback has no code", nil)
	}

	// The pending launch is taken (read and deleted in one step) before
	// anything else: a callback replayed, even while this one is in
	// flight, finds nothing.
	var p pendingLaunch
	switch err := e.takePending(ctx, s.store, op, s.id, req.State, &p); {
	case errors.Is(err, ErrNotFound):
		return nil, newError(op, CodeInvalidState, "the state matches no pending launch (unknown, already used or expired)", unsealed(err))
	case err != nil:
		return nil, err
	}
	if p.Session != s.id {
		return nil, newError(op, CodeInvalidState, "the state belongs to another browser session", nil)
	}
	if e.cfg.Now().After(p.Expires) {
		return nil, newError(op, CodeLaunchExpired, "the launch took too long; launch the app again", nil)
	}
	is, err := e.issuer(op, p.Issuer)
	if err != nil {
		return nil, err
	}
	as, err := e.server(ctx, op, is)
	if err != nil {
		return nil, err
	}
	if err := e.checkAnswerer(op, is, as, &p, &req); err != nil {
		return nil, err
	}

	tr, err := e.requestToken(ctx, op, CodeTokenExchangeFailed, is, as, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {req.Code},
		"redirect_uri":  {p.redirectURI(e)},
		"code_verifier": {string(p.Verifier)},
	})
	if err != nil {
		return nil, err
	}
	lc := launchContextFrom(is.URL, tr, e.cfg.Now())
	if tr.IDToken == "" && grantsOpenID(tr.Scope, e.requestedScope(is, p.Launch != "")) {
		return nil, newError(op, CodeInvalidIDToken, "the EHR granted openid but sent no id_token", nil)
	}
	if tr.IDToken != "" {
		claims, err := e.verifyIDToken(ctx, op, as, tr.IDToken, p.Nonce)
		if err != nil {
			return nil, err
		}
		lc.Subject, lc.AuthIssuer, lc.FHIRUser = claims.Subject, claims.Issuer, claims.FHIRUser
		if ref, ok := ParseReference(is.URL, claims.FHIRUser); ok {
			lc.User = ref
		}
	}

	for _, id := range []*string{&lc.Patient, &lc.Encounter} {
		if *id != "" && !validID(*id) {
			e.log.LogAttrs(ctx, logWarn, "the EHR sent a malformed id in the launch context; it is left out", slogIssuer(is))
			*id = ""
		}
	}
	if req.BeforeStore != nil {
		if err := req.BeforeStore(ctx, lc); err != nil {
			var ce *Error
			if errors.As(err, &ce) {
				return nil, err
			}
			return nil, newError(op, CodeInvalidState, "the launch was not accepted for this browser session", err)
		}
	}
	rec := launchRecord{
		V:       recordVersion,
		Session: s.id,
		Handle:  newSecretString(),
		Tokens:  tokens{Access: Secret(tr.AccessToken), Refresh: Secret(tr.RefreshToken), Expiry: lc.Expiry, Issued: e.cfg.Now()},
		Context: lc,
		Created: e.cfg.Now(),
	}
	if err := e.putRecord(ctx, s.store, op, launchKey(rec.Handle), &rec, e.cfg.SessionTTL); err != nil {
		return nil, err
	}
	evicted, err := s.addToIndex(ctx, op, rec.Handle)
	if err != nil {
		_ = deleteRecord(ctx, s.store, op, launchKey(rec.Handle))
		return nil, err
	}
	for _, h := range evicted {
		_ = deleteRecord(ctx, s.store, op, launchKey(h))
	}
	e.log.LogAttrs(ctx, logDebug, "callback", slogIssuer(is), slogBool("id_token", tr.IDToken != ""))
	return &CallbackResult{Handle: rec.Handle, RedirectURL: e.redirectURL(rec.Handle), Context: lc}, nil
}

// redirectURL adds the handle to Config.RedirectURL.
func (e *Engine) redirectURL(handle string) string {
	u, _ := url.Parse(e.cfg.RedirectURL) // checked in New
	q := u.Query()
	q.Set(HandleParam, handle)
	u.RawQuery = q.Encode()
	return u.String()
}

// printable keeps an EHR-supplied string short and free of control
// characters before it goes into an error message.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
