package smarttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/http"
	"sync"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The key ids of the server's signing keys, as served in the JWKS.
const (
	// KeyIDRSA is the RSA 2048 key: RS256 and RS384 id_tokens, JWT access
	// tokens.
	KeyIDRSA = "rsa-1"
	// KeyIDP256 is the EC P-256 key: ES256 id_tokens.
	KeyIDP256 = "ec-1"
	// KeyIDP384 is the EC P-384 key: ES384 id_tokens (ES384 needs P-384).
	KeyIDP384 = "ec-2"
)

// keySet holds the server's signing keys, generated at NewServer.
type keySet struct {
	rsa     *rsa.PrivateKey
	p256    *ecdsa.PrivateKey
	p384    *ecdsa.PrivateKey
	idAlg   jose.SignatureAlgorithm
	omitKID bool

	rogueOnce sync.Once
	rogue     crypto.Signer // same type as the id_token key, never published
	rogueErr  error
}

func newKeySet(alg string, omitKID bool) (*keySet, error) {
	k := &keySet{idAlg: jose.SignatureAlgorithm(alg), omitKID: omitKID}
	switch k.idAlg {
	case jose.RS256, jose.RS384, jose.ES256, jose.ES384:
	default:
		return nil, fmt.Errorf("unsupported IDTokenAlg %q (want RS256, RS384, ES256 or ES384)", alg)
	}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if k.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		return nil, err
	}
	return k, nil
}

// idKey returns the id_token signing key and its kid.
func (k *keySet) idKey() (crypto.Signer, string) {
	switch k.idAlg {
	case jose.ES256:
		return k.p256, KeyIDP256
	case jose.ES384:
		return k.p384, KeyIDP384
	default:
		return k.rsa, KeyIDRSA
	}
}

// rogueKey returns a key of the id_token key's type that is not in the JWKS.
func (k *keySet) rogueKey() (crypto.Signer, error) {
	k.rogueOnce.Do(func() {
		switch k.idAlg {
		case jose.ES256:
			k.rogue, k.rogueErr = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		case jose.ES384:
			k.rogue, k.rogueErr = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		default:
			k.rogue, k.rogueErr = rsa.GenerateKey(rand.Reader, 2048)
		}
	})
	return k.rogue, k.rogueErr
}

// jwks returns the public key set: every key with its kid, or only the
// id_token key without a kid when kids are omitted.
func (k *keySet) jwks() jose.JSONWebKeySet {
	if k.omitKID {
		key, _ := k.idKey()
		return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), Use: "sig"}}}
	}
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: k.rsa.Public(), KeyID: KeyIDRSA, Use: "sig"},
		{Key: k.p256.Public(), KeyID: KeyIDP256, Use: "sig"},
		{Key: k.p384.Public(), KeyID: KeyIDP384, Use: "sig"},
	}}
}

// signJWT signs claims as a compact JWS with go-jose. An empty kid leaves the
// kid header out.
func signJWT(alg jose.SignatureAlgorithm, key crypto.Signer, kid string, claims any) (string, error) {
	var sk any = key
	if kid != "" {
		sk = jose.JSONWebKey{Key: key, KeyID: kid}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: sk},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, "application/json", s.keys.jwks(), EndpointJWKS)
}
