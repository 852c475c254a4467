package core

import (
	"crypto"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/go-jose/go-jose/v4"
)

// jwksCacheControl lets EHRs and proxies keep the key set for an hour: an
// EHR fetches it at each token request otherwise. An hour bounds how long
// a key withdrawn from the set is still trusted by a cache; rotate by
// publishing the new key at least that long before signing with it (an
// EHR that meets an unknown kid fetches the set again anyway).
const jwksCacheControl = "public, max-age=3600"

// JWKSHandler returns an HTTP handler that publishes the public keys of
// the private_key_jwt signers in keys as a JSON Web Key Set (RFC 7517), so
// that an EHR can register the app by the URL of its JWKS. Mount it at
// GET /.well-known/jwks.json, say, and pass the ClientAuth of every
// issuer that signs (Config.Issuers[i].Auth) and the keys being rotated in
// or out: during a rotation the set lists the old and the new key, and
// the EHR picks the one whose kid the assertion names.
//
// Each key is listed with its KeyID as kid, use "sig" and the algorithm
// the engine signs with (RS384 for RSA, ES384 for ECDSA on P-384); only
// the public part is published. The same key listed twice under the same
// kid is listed once. The answer is application/jwk-set+json with
// Cache-Control "public, max-age=3600": publish a new key an hour before
// signing with it, and keep an old one an hour after its last use.
//
// JWKSHandler returns an error with [CodeInvalidConfig] when keys is
// empty, when a ClientAuth has no Signer or no KeyID (SMART requires the
// kid header), when two keys share a kid, or when a key is one New would
// refuse: only RSA of at least 2048 bits and ECDSA on P-384 sign SMART's
// client assertions.
func JWKSHandler(keys ...ClientAuth) (http.Handler, error) {
	if len(keys) == 0 {
		return nil, jwksError("has no key: pass the ClientAuth of each private_key_jwt signer")
	}
	var set jose.JSONWebKeySet
	for i, a := range keys {
		if a.Signer == nil {
			return nil, jwksError("key %d has no Signer: only private_key_jwt keys are published", i)
		}
		if a.KeyID == "" {
			return nil, jwksError("key %d has no KeyID: SMART asks for the kid of the key in every client assertion", i)
		}
		alg, err := signingAlgorithm(a.Signer)
		if err != nil {
			return nil, jwksError("key %d (kid %q) %v", i, a.KeyID, err)
		}
		pub := a.Signer.Public()
		if dup := set.Key(a.KeyID); len(dup) > 0 {
			if same, ok := dup[0].Key.(interface{ Equal(crypto.PublicKey) bool }); ok && same.Equal(pub) {
				continue
			}
			return nil, jwksError("key %d has kid %q, which another key has: each key needs its own kid", i, a.KeyID)
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: pub, KeyID: a.KeyID, Algorithm: alg, Use: "sig"})
	}
	body, err := json.Marshal(set)
	if err != nil {
		return nil, jwksError("cannot be encoded: %v", err)
	}
	return jwksHandler(body), nil
}

// jwksHandler answers GET and HEAD with the encoded key set.
type jwksHandler []byte

func (body jwksHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", jwksCacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodGet {
		w.Write(body)
	}
}

func jwksError(format string, args ...any) error {
	return &Error{Op: "jwks", Code: CodeInvalidConfig, Description: "JWKSHandler: " + fmt.Sprintf(format, args...)}
}
