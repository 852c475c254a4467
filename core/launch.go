package core

import (
	"context"
	"encoding/base64"
	"strings"

	"golang.org/x/oauth2"
)

var b64 = base64.RawURLEncoding

// maxParamLen bounds every launch and callback parameter.
const maxParamLen = 4096

func (s *session) launch(ctx context.Context, iss, launch string) (string, error) {
	const op = "launch"
	e := s.engine
	if len(iss) > maxParamLen || len(launch) > maxParamLen {
		return "", newError(op, CodeInvalidRequest, "a launch parameter is too long", nil)
	}
	is, err := e.issuer(op, iss)
	if err != nil {
		return "", err
	}
	if s.id == "" {
		return "", newError(op, CodeNoLaunch, "the request has no browser session", nil)
	}
	if is.CallbackURL == "" {
		return "", newError(op, CodeInvalidConfig, "Config.CallbackURL is empty: this engine serves Backend Services only, not launches", nil)
	}
	as, err := e.server(ctx, op, is)
	if err != nil {
		return "", err
	}
	noteIssuer(ctx, is)
	if as.disc.AuthorizationEndpoint == "" {
		return "", newError(op, CodeDiscoveryFailed, "the EHR names no authorization_endpoint: it serves Backend Services only, not launches", nil)
	}
	scope := e.requestedScope(is, launch != "")
	if as.verifier == nil && hasScope(scope, "openid") {
		// The id_token openid asks for could not be verified: refuse now,
		// before the clinician logs in, rather than at the callback.
		if as.gap != nil {
			return "", as.gap.error(op)
		}
		return "", newError(op, CodeDiscoveryFailed, "the EHR names no issuer or key set (jwks_uri) to verify the id_token that the scope's openid asks for; "+
			"drop openid and fhirUser from the scope, or name the EHR's OpenID issuer in the issuer's AuthorizationServer", nil)
	}
	p := pendingLaunch{
		V:           recordVersion,
		Session:     s.id,
		Issuer:      is.URL,
		Launch:      launch,
		Verifier:    Secret(oauth2.GenerateVerifier()),
		Nonce:       newSecretString(),
		Expires:     e.cfg.Now().Add(e.cfg.PendingLaunchTTL),
		RedirectURI: is.CallbackURL,
		Scope:       scope,
	}
	state := newSecretString()
	if err := e.putRecord(ctx, s.store, op, pendingKey(s.id, state), &p, e.cfg.PendingLaunchTTL); err != nil {
		return "", err
	}
	if err := s.addPending(ctx, op, state); err != nil {
		_ = deleteRecord(ctx, s.store, op, pendingKey(s.id, state))
		return "", err
	}
	aud := is.URL // SMART: the FHIR base the token is for
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
	if launch != "" {
		opts = append(opts, oauth2.SetAuthURLParam("launch", launch))
	}
	e.log.LogAttrs(ctx, logDebug, "launch", slogIssuer(is), slogBool("ehr_launch", launch != ""))
	return oc.AuthCodeURL(state, opts...), nil
}
