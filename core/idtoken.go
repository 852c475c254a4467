package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// idTokenVerifier checks id_tokens of one issuer; nil when the issuer
// publishes no jwks_uri.
type idTokenVerifier = *oidc.IDTokenVerifier

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
func (e *Engine) newVerifier(is *Issuer, d *discovery) idTokenVerifier {
	if d.JWKSURI == "" || d.Issuer == "" {
		return nil
	}
	ctx := oidc.ClientContext(context.Background(), e.issuerClient(is))
	keys := oidc.NewRemoteKeySet(ctx, d.JWKSURI)
	issuer := d.Issuer
	return oidc.NewVerifier(issuer, keys, &oidc.Config{
		ClientID:             is.ClientID,
		SupportedSigningAlgs: idTokenAlgs,
		// go-oidc has no leeway setting: checking against a clock that is
		// Leeway behind tolerates that much skew on exp.
		Now: func() time.Time { return e.cfg.Now().Add(-e.cfg.Leeway) },
	})
}

// idClaims are the id_token claims the engine reads.
type idClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	FHIRUser string `json:"fhirUser"`
	Profile  string `json:"profile"` // SMART v1 name of fhirUser
	IssuedAt int64  `json:"iat"`
}

// verifyIDToken checks an id_token's signature (against the issuer's JWKS),
// issuer, audience, expiry and, when nonce is not empty, nonce.
func (e *Engine) verifyIDToken(ctx context.Context, op string, as *authServer, raw, nonce string) (*idClaims, error) {
	fail := func(desc string, err error) error { return newError(op, CodeInvalidIDToken, desc, err) }
	if as.verifier == nil {
		return nil, fail("the issuer's smart-configuration lacks issuer or jwks_uri, so its id_token cannot be verified", nil)
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
