package smarttest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"strings"
	"time"
)

// IDTokenFault selects a way to forge the id_tokens the token endpoint
// issues, to test that clients reject them. Set it in Faults.IDToken.
type IDTokenFault int

// The id_token forgeries.
const (
	// IDTokenOK issues a correct id_token.
	IDTokenOK IDTokenFault = iota
	// IDTokenWrongIssuer sets iss to the FHIR base URL instead of the
	// AuthIssuer, the classic confusion.
	IDTokenWrongIssuer
	// IDTokenWrongAudience sets aud to another client id.
	IDTokenWrongAudience
	// IDTokenMultipleAudiencesWithoutClient sets aud to two other client
	// ids, neither the requesting client.
	IDTokenMultipleAudiencesWithoutClient
	// IDTokenExpired issues a token that expired an hour ago.
	IDTokenExpired
	// IDTokenBadSignature signs with a key that is not in the JWKS, under
	// the kid of the real key.
	IDTokenBadSignature
	// IDTokenAlgNone issues an unsigned token with alg "none".
	IDTokenAlgNone
	// IDTokenHS256PublicKey signs with HS256, using the PEM encoding of the
	// id_token public key as the HMAC secret (the key confusion attack).
	IDTokenHS256PublicKey
	// IDTokenUnknownKID signs with the real key but names a kid that is not
	// in the JWKS.
	IDTokenUnknownKID
	// IDTokenWrongNonce sets a nonce other than the authorize request's.
	IDTokenWrongNonce
	// IDTokenNoNonce leaves the nonce out even when the authorize request
	// had one.
	IDTokenNoNonce
	// IDTokenFutureIAT sets iat one day ahead.
	IDTokenFutureIAT
	// IDTokenAzpOtherClient names the requesting client in aud but another
	// client in azp: the token was issued to someone else (OpenID Connect
	// Core section 3.1.3.7).
	IDTokenAzpOtherClient
	// IDTokenMultipleAudiencesNoAzp sets aud to the requesting client and
	// another one, with no azp.
	IDTokenMultipleAudiencesNoAzp
	// IDTokenMissing leaves the id_token out of the token response, though
	// the granted scope (which the response names) has openid.
	IDTokenMissing
	// IDTokenLongLived has no iat and an exp five years ahead.
	IDTokenLongLived
)

// SignIDToken signs the given claims, as they are, with the server's current
// id_token key and algorithm (Options.IDTokenAlg), with a kid header unless
// Options.OmitKID. Use it to build id_tokens by hand in tests.
func (s *Server) SignIDToken(claims map[string]any) (string, error) {
	key, kid := s.keys.idKey()
	if s.keys.omitKID {
		kid = ""
	}
	return signJWT(s.keys.idAlg, key, kid, claims)
}

// subjectFor returns a stable sub for a fhirUser, the same whether the
// fhirUser is given relative or absolute.
func subjectFor(root, fhirUser string) string {
	ref := strings.TrimPrefix(fhirUser, root+"/fhir/")
	sum := sha256.Sum256([]byte(ref))
	return "user-" + hex.EncodeToString(sum[:10])
}

// newIDToken issues the id_token of a grant, forged as fault says.
func (s *Server) newIDToken(root string, g *grant, fault IDTokenFault) (string, error) {
	now := s.opts.Now()
	claims := map[string]any{
		"iss": root + "/auth",
		"sub": subjectFor(root, g.lc.FHIRUser),
		"aud": g.clientID,
		"iat": now.Unix(),
		"exp": now.Add(s.opts.IDTokenLifetime).Unix(),
	}
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	if g.lc.FHIRUser != "" {
		claims["fhirUser"] = g.lc.FHIRUser
	}
	key, kid := s.keys.idKey()
	if s.keys.omitKID {
		kid = ""
	}
	switch fault {
	case IDTokenWrongIssuer:
		claims["iss"] = root + "/fhir"
	case IDTokenWrongAudience:
		claims["aud"] = "another-client"
	case IDTokenMultipleAudiencesWithoutClient:
		claims["aud"] = []string{"another-client", "third-client"}
	case IDTokenExpired:
		claims["iat"] = now.Add(-2 * time.Hour).Unix()
		claims["exp"] = now.Add(-time.Hour).Unix()
	case IDTokenWrongNonce:
		claims["nonce"] = "wrong-nonce"
	case IDTokenNoNonce:
		delete(claims, "nonce")
	case IDTokenAzpOtherClient:
		claims["azp"] = "another-client"
	case IDTokenMultipleAudiencesNoAzp:
		claims["aud"] = []string{g.clientID, "another-client"}
	case IDTokenLongLived:
		delete(claims, "iat")
		claims["exp"] = now.AddDate(5, 0, 0).Unix()
	case IDTokenFutureIAT:
		claims["iat"] = now.Add(24 * time.Hour).Unix()
		claims["exp"] = now.Add(24*time.Hour + s.opts.IDTokenLifetime).Unix()
	case IDTokenUnknownKID:
		kid = "unknown-kid"
	case IDTokenBadSignature:
		rogue, err := s.keys.rogueKey()
		if err != nil {
			return "", err
		}
		key = rogue
	case IDTokenAlgNone:
		return handMadeJWT(map[string]any{"alg": "none", "typ": "JWT"}, claims, nil)
	case IDTokenHS256PublicKey:
		der, err := x509.MarshalPKIXPublicKey(key.Public())
		if err != nil {
			return "", err
		}
		secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		header := map[string]any{"alg": "HS256", "typ": "JWT"}
		if kid != "" {
			header["kid"] = kid
		}
		return handMadeJWT(header, claims, func(input []byte) []byte {
			mac := hmac.New(sha256.New, secret)
			mac.Write(input)
			return mac.Sum(nil)
		})
	}
	return signJWT(s.keys.idAlg, key, kid, claims)
}

// handMadeJWT builds a compact JWS that go-jose refuses to make: sign
// returns the signature of the signing input, or nil means no signature.
func handMadeJWT(header, claims map[string]any, sign func([]byte) []byte) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + enc.EncodeToString(sig), nil
}
