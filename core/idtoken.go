package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// idTokenVerifier checks id_tokens of one issuer; nil when the issuer
// publishes no jwks_uri.
type idTokenVerifier = *verifier

// verifier is go-oidc's verifier and the client id it checks aud against,
// which the engine's own checks (azp) need too.
type verifier struct {
	*oidc.IDTokenVerifier
	clientID string
}

// maxIDTokenLifetime bounds an id_token's lifetime: exp - iat, or exp - now
// when the token has no iat, may not exceed it (24 hours). An id_token
// proves a login that just happened; one valid for years is a forgery or a
// misconfigured server, and would be replayable for as long.
const maxIDTokenLifetime = 24 * time.Hour

// The signing algorithms accepted on id_tokens. "none" and the HMAC
// algorithms are never accepted.
var idTokenAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512,
}

// newVerifier builds the id_token verifier of an issuer from its
// smart-configuration: issuer and jwks_uri from there, never the FHIR base.
// The key set is fetched on first use and cached; go-oidc fetches it again
// only for a kid it has not seen.
func (e *Engine) newVerifier(is *Issuer, d *Discovery) idTokenVerifier {
	if d.JWKSURI == "" || d.Issuer == "" {
		return nil
	}
	keys := newTracedKeySet(e.tel)
	client := *e.issuerClient(is)
	client.Transport = &jwksTransport{base: client.Transport, keys: keys}
	keys.KeySet = oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), &client), d.JWKSURI)
	issuer := d.Issuer
	return newIDTokenVerifier(issuer, is.ClientID, keys, func() time.Time { return e.cfg.Now().Add(-e.cfg.Leeway) })
}

// newIDTokenVerifier builds the verifier of id_tokens issued by issuer to
// clientID, signed with keys, checked against the clock now.
func newIDTokenVerifier(issuer, clientID string, keys oidc.KeySet, now func() time.Time) idTokenVerifier {
	return &verifier{clientID: clientID, IDTokenVerifier: oidc.NewVerifier(issuer, keys, &oidc.Config{
		ClientID:             clientID,
		SupportedSigningAlgs: idTokenAlgs,
		// go-oidc has no leeway setting: checking against a clock that is
		// Leeway behind tolerates that much skew on exp.
		Now: now,
	})}
}

// grantsOpenID reports whether a token response granted the openid scope:
// its scope names it or, when it names no scope, the requested one does
// (RFC 6749 section 5.1: a response without scope granted what was asked).
func grantsOpenID(granted, requested string) bool {
	if granted == "" {
		granted = requested
	}
	for s := range strings.FieldsSeq(granted) {
		if s == "openid" {
			return true
		}
	}
	return false
}

// requestedScope is the scope a launch from is is asked for: the issuer's
// own Scope, or Config.Scope, with "launch" as "launch/patient" for a
// standalone launch.
func (e *Engine) requestedScope(is *Issuer, ehrLaunch bool) string {
	switch {
	case is.Scope != "" && ehrLaunch:
		return is.Scope
	case is.Scope != "":
		return standaloneScope(is.Scope)
	case ehrLaunch:
		return e.cfg.Scope
	}
	return standaloneScope(e.cfg.Scope)
}

// idClaims are the id_token claims the engine reads.
type idClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	FHIRUser string `json:"fhirUser"`
	Profile  string `json:"profile"` // SMART v1 name of fhirUser
	IssuedAt int64  `json:"iat"`
	// AuthorizedParty is azp: the client the token was issued to, when
	// aud names several.
	AuthorizedParty string `json:"azp"`
}

// verifyIDToken checks an id_token's signature (against the issuer's JWKS),
// issuer, audience, expiry and, when nonce is not empty, nonce; then, as
// OpenID Connect Core section 3.1.3.7 asks, azp: it must be present when
// aud names several audiences, and name this client when present; and
// that the token's lifetime is at most maxIDTokenLifetime.
func (e *Engine) verifyIDToken(ctx context.Context, op string, as *authServer, raw, nonce string) (_ *idClaims, err error) {
	ctx, span := e.tel.start(ctx, spanIDToken)
	defer func() { endSpan(span, err) }()
	fail := func(desc string, err error) error { return newError(op, CodeInvalidIDToken, desc, err) }
	if as.verifier == nil {
		return nil, fail("the EHR names no issuer or key set (jwks_uri) to verify its id_token with", nil)
	}
	tok, err := as.verifier.Verify(ctx, raw)
	if err != nil {
		var exp *oidc.TokenExpiredError
		if errors.As(err, &exp) {
			return nil, fail("the id_token has expired", err)
		}
		return nil, fail("the id_token failed verification", err)
	}
	var c idClaims
	if err := tok.Claims(&c); err != nil {
		return nil, fail("the id_token's claims are malformed", err)
	}
	if nonce != "" && tok.Nonce != nonce {
		return nil, fail("the id_token's nonce does not match the launch", nil)
	}
	if len(tok.Audience) > 1 && c.AuthorizedParty == "" {
		return nil, fail("the id_token names several audiences but no authorized party (azp)", nil)
	}
	if c.AuthorizedParty != "" && c.AuthorizedParty != as.verifier.clientID {
		return nil, fail("the id_token was issued to another client (azp)", nil)
	}
	lifetime, from := tok.Expiry.Sub(tok.IssuedAt), "iat"
	if tok.IssuedAt.IsZero() {
		lifetime, from = tok.Expiry.Sub(e.cfg.Now()), "now"
	}
	if lifetime > maxIDTokenLifetime {
		return nil, fail(fmt.Sprintf("the id_token is valid for more than %s from %s", maxIDTokenLifetime, from), nil)
	}
	if c.IssuedAt != 0 {
		if iat := time.Unix(c.IssuedAt, 0); iat.After(e.cfg.Now().Add(e.cfg.Leeway)) {
			return nil, fail(fmt.Sprintf("the id_token was issued in the future (iat %s)", iat.UTC().Format(time.RFC3339)), nil)
		}
	}
	if c.FHIRUser == "" {
		c.FHIRUser = c.Profile
	}
	return &c, nil
}
