package core

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/fhirware/smart/core/fhir"
)

// CallbackRequest is the EHR's answer to the authorize request, as the
// browser brings it to the callback URL.
type CallbackRequest struct {
	// Query is the callback URL's query: code, state and, when the EHR
	// sends it, the RFC 9207 iss; or error, error_description and state
	// when the EHR refused. When issuers have redirect URIs of their own
	// (Issuer.CallbackURL), the parameters that tell them apart must be in
	// it with the launch's values.
	Query url.Values
	// BeforeStore, when set, is called once the code is exchanged and the
	// id_token verified, with the launch context, before anything is
	// stored: an error stops the callback (an *Error as it is, any other
	// as invalid_state) and no launch is stored, so nobody ever sees it.
	// The adapters renew the browser's session token here, against
	// session fixation, so that no token planted before the callback can
	// see the launch even for a moment; and check that a callback
	// finished through an old token's forward was authorized by the same
	// user.
	BeforeStore func(ctx context.Context, lc LaunchContext) error
}

func (s *session) callback(ctx context.Context, req CallbackRequest) (*ReadyClient, error) {
	const op = "callback"
	e := s.engine
	q := callbackParams{
		Code: req.Query.Get("code"), State: req.Query.Get("state"), Issuer: req.Query.Get("iss"),
		Error: req.Query.Get("error"), ErrorDescription: req.Query.Get("error_description"),
	}
	for _, v := range []string{q.Code, q.State, q.Issuer, q.Error, q.ErrorDescription} {
		if len(v) > maxParamLen {
			return nil, newError(op, CodeInvalidRequest, "a callback parameter is too long", nil)
		}
	}
	if s.id == "" {
		return nil, newError(op, CodeNoLaunch, "the request has no browser session; cookies may be blocked", nil)
	}
	if q.Error != "" {
		// The EHR's words are shown only for a refusal of one of this
		// session's launches: anyone can link to the callback with an
		// error of their own. The pending launch is burnt: single use.
		var p pendingLaunch
		if q.State == "" || e.takePending(ctx, s.store, op, s.id, q.State, &p) != nil || p.Session != s.id {
			return nil, newError(op, CodeInvalidState, "the callback reports an error, but its state matches no pending launch of this browser session", nil)
		}
		// The page names the error code only when it is a registered one;
		// the EHR's own words, which anyone who can make the EHR redirect
		// can choose, stay in the cause, for logs.
		desc := "the EHR refused the authorization"
		if oauthErrorCodes[q.Error] {
			desc += ": " + q.Error
		}
		said := "the EHR said: error " + quoteShort(printable(q.Error))
		if q.ErrorDescription != "" {
			said += ", error_description " + quoteShort(printable(q.ErrorDescription))
		}
		return nil, newError(op, CodeAuthorizationDenied, desc, errors.New(said))
	}
	if q.State == "" {
		return nil, newError(op, CodeInvalidRequest, "the callback has no state", nil)
	}
	if q.Code == "" {
		return nil, newError(op, CodeInvalidRequest, "the callback has no code", nil)
	}

	// The pending launch is taken (read and deleted in one step) before
	// anything else: a callback replayed, even while this one is in
	// flight, finds nothing.
	var p pendingLaunch
	switch err := e.takePending(ctx, s.store, op, s.id, q.State, &p); {
	case errors.Is(err, ErrNotFound):
		return nil, newError(op, CodeInvalidState, "the state matches no pending launch (unknown, already used or expired)", unsealed(err))
	case err != nil:
		return nil, err
	}
	if p.Session != s.id {
		return nil, newError(op, CodeInvalidState, "the state belongs to another browser session", nil)
	}
	if e.cfg.Now().After(p.Expires) {
		return nil, newError(op, CodeInvalidState, "the launch took too long", nil)
	}
	is, err := e.issuer(op, p.Issuer)
	if err != nil {
		return nil, err
	}
	as, err := e.server(ctx, op, is)
	if err != nil {
		return nil, err
	}
	noteIssuer(ctx, is)
	if err := e.checkAnswerer(op, is, as, &p, q.Issuer, req.Query); err != nil {
		return nil, err
	}

	tr, err := e.requestToken(ctx, op, CodeTokenExchangeFailed, is, as, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {q.Code},
		"redirect_uri":  {p.redirectURI(e)},
		"code_verifier": {string(p.Verifier)},
	})
	if err != nil {
		return nil, err
	}
	lc := launchContextFrom(is.URL, tr, e.cfg.Now())
	requested := p.requestedScope(e, is)
	// An id_token the launch did not ask for, from an EHR that names no
	// key set to verify it, is left unread rather than failing a launch
	// that needs no identity.
	ignoreIDToken := as.verifier == nil && !hasScope(requested, "openid")
	if ignoreIDToken && tr.IDToken != "" {
		e.log.LogAttrs(ctx, logDebug, "the EHR sent an id_token the launch did not ask for and names no key set to verify it; it is ignored", slogIssuer(is))
		tr.IDToken = ""
	}
	if tr.IDToken == "" && grantsOpenID(tr.Scope, requested) && !ignoreIDToken {
		return nil, newError(op, CodeInvalidIDToken, "the EHR granted openid but sent no id_token", nil)
	}
	if tr.IDToken != "" {
		claims, err := e.verifyIDToken(ctx, op, as, tr.IDToken, p.Nonce)
		if err != nil {
			return nil, err
		}
		lc.Subject, lc.AuthIssuer = claims.Subject, claims.Issuer
		if ref, ok := fhir.ParseReference(is.URL, claims.FHIRUser); ok {
			lc.User = ref
		}
	}

	for _, id := range []*string{&lc.Patient, &lc.Encounter} {
		if *id != "" && !validID(*id) {
			e.log.LogAttrs(ctx, logWarn, "the EHR sent a malformed id in the launch context; it is left out", slogIssuer(is))
			*id = ""
		}
	}
	if err := e.checkRequiredScope(op, granted(lc.Scope, requested)); err != nil {
		return nil, err
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
		V:         recordVersion,
		Session:   s.id,
		Handle:    newSecretString(),
		Tokens:    tokens{Access: Secret(tr.AccessToken), Refresh: Secret(tr.RefreshToken), Expiry: lc.Expiry, Issued: e.cfg.Now()},
		Context:   lc,
		Created:   e.cfg.Now(),
		Requested: requested,

		FHIRVersion: as.disc.FHIRVersion,
	}
	if err := e.putRecord(ctx, s.store, op, launchKey(rec.Handle), &rec, e.cfg.LaunchTTL); err != nil {
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
	return s.readyClient(op, rec.Handle, rec)
}

// callbackParams are the callback query's parameters the engine reads.
type callbackParams struct {
	Code, State, Issuer, Error, ErrorDescription string
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
