package core

import (
	"context"
	"encoding/base64"
	"strings"

	"golang.org/x/oauth2"
)

var b64 = base64.RawURLEncoding

// LaunchRequest is the first step of a SMART launch.
type LaunchRequest struct {
	// Issuer is the FHIR base URL: the iss parameter of an EHR launch, or
	// the issuer the app chose for a standalone launch.
	Issuer string
	// Launch is the EHR's opaque launch parameter; empty for a standalone
	// launch.
	Launch string
}

// maxParamLen bounds every launch and callback parameter.
const maxParamLen = 4096

// Launch starts a launch: it discovers the issuer's endpoints (cached),
// stores a pending launch keyed by a fresh state with a PKCE verifier and a
// nonce, and returns the EHR's authorize URL to redirect the browser to.
//
// Each call makes its own pending launch, so overlapping launches in one
// browser session (several tabs) never overwrite each other.
func (s *Session) Launch(ctx context.Context, req LaunchRequest) (string, error) {
	const op = "launch"
	e := s.engine
	if len(req.Issuer) > maxParamLen || len(req.Launch) > maxParamLen {
		return "", newError(op, CodeInvalidRequest, "a launch parameter is too long", nil)
	}
	is, err := e.issuer(op, req.Issuer)
	if err != nil {
		return "", err
	}
	if s.id == "" {
		return "", newError(op, CodeNoSession, "the request has no browser session", nil)
	}
	as, err := e.server(ctx, op, is)
	if err != nil {
		return "", err
	}
	p := pendingLaunch{
		V:           recordVersion,
		Session:     s.id,
		Issuer:      is.URL,
		Launch:      req.Launch,
		Verifier:    Secret(oauth2.GenerateVerifier()),
		Nonce:       newSecretString(),
		Expires:     e.cfg.Now().Add(e.cfg.PendingLaunchTTL),
		RedirectURI: is.CallbackURL,
	}
	state := newSecretString()
	if err := e.putRecord(ctx, s.store, op, pendingKey(s.id, state), &p, e.cfg.PendingLaunchTTL); err != nil {
		return "", err
	}
	if err := s.addPending(ctx, op, state); err != nil {
		_ = deleteRecord(ctx, s.store, op, pendingKey(s.id, state))
		return "", err
	}
	scope := e.requestedScope(is, req.Launch != "")
	aud := is.Audience
	if aud == "" {
		aud = is.URL
	}
	oc := oauth2.Config{
		ClientID:    is.ClientID,
		Endpoint:    oauth2.Endpoint{AuthURL: as.disc.AuthorizationEndpoint},
		RedirectURL: p.RedirectURI,
		Scopes:      strings.Fields(scope),
	}
	opts := []oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(string(p.Verifier)), // always, advertised or not
		oauth2.SetAuthURLParam("aud", aud),
		oauth2.SetAuthURLParam("nonce", p.Nonce),
	}
	if req.Launch != "" {
		opts = append(opts, oauth2.SetAuthURLParam("launch", req.Launch))
	}
	e.log.LogAttrs(ctx, logDebug, "launch", slogIssuer(is), slogBool("ehr_launch", req.Launch != ""),
		slogBool("server_advertises_s256", as.disc.supportsS256()))
	return oc.AuthCodeURL(state, opts...), nil
}
