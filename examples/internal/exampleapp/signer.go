package exampleapp

import (
	"crypto"
	"fmt"

	"github.com/fhirware/smart/core"
)

// PrivateKeyAuth reads the private key in the PEM file at path (PKCS#8,
// PKCS#1 or SEC 1), as -private-key does, and returns [SignerAuth] of it.
func PrivateKeyAuth(path, kid string) (core.ClientAuth, error) {
	signer, err := readPrivateKey(path)
	if err != nil {
		return core.ClientAuth{}, err
	}
	return SignerAuth(signer, kid)
}

// SignerAuth returns the private_key_jwt client authentication of signer,
// named by kid or, when kid is empty, by the key's RFC 7638 thumbprint, as
// -kid does: SMART asks for a kid in every assertion, and a thumbprint
// stays the same across restarts.
func SignerAuth(signer crypto.Signer, kid string) (core.ClientAuth, error) {
	if kid == "" {
		var err error
		if kid, err = thumbprint(signer); err != nil {
			return core.ClientAuth{}, fmt.Errorf("the key's thumbprint: %w", err)
		}
	}
	return core.ClientAuth{Signer: signer, KeyID: kid}, nil
}
