package core

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// errUnsealable is the cause of the error a request gets when a stored
// record cannot be opened with Config.StoreKeys: it was sealed with a key
// no longer configured, changed in the store, copied there from another
// key, or stored unsealed while keys are configured. The engine treats the
// record as missing, so the user launches again: the ready path answers
// CodeNoLaunch, a callback CodeInvalidState. errors.Is(err, ErrNotFound)
// holds for it.
var errUnsealable = fmt.Errorf("smart: storage: the record cannot be opened with Config.StoreKeys: %w", ErrNotFound)

// storeKeySize is the size in bytes of each of Config.StoreKeys, decoded:
// an AES-256 key.
const storeKeySize = 32

// A sealed record (the engine's envelope, version 1) is
//
//	version  1 byte   sealVersion (0x01; a plain JSON record starts with '{')
//	key id   4 bytes  the first 4 bytes of SHA-256("fhirware/smart store key\x00" || key)
//	nonce   12 bytes  random, fresh for each seal
//	sealed   n bytes  AES-256-GCM of the record's JSON, with its 16-byte tag
//
// The additional data of the GCM seal is the version, the key id and the
// record's storage key (such as "launch:<session>:<handle>"), so a value
// copied under another key, or with its header changed, does not open. The
// key id is derived from the key, not from its place in the list, so keys
// may be listed in any order. A seal adds sealOverhead (33) bytes.
const (
	sealVersion  byte = 0x01
	keyIDSize         = 4
	sealHeader        = 1 + keyIDSize
	nonceSize         = 12
	tagSize           = 16
	sealOverhead      = sealHeader + nonceSize + tagSize
)

// keyRing seals records with its first key and opens them with any of its
// keys. The nil keyRing (no StoreKeys) stores records as they are.
type keyRing struct {
	keys []sealKey // keys[0] seals
}

type sealKey struct {
	id   [keyIDSize]byte
	aead cipher.AEAD // random nonce, prepended; safe for concurrent use
}

// newKeyRing builds the ring of keys, each the standard base64 of
// storeKeySize random bytes. It returns nil for no keys.
func newKeyRing(keys []Secret) (*keyRing, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	r := &keyRing{keys: make([]sealKey, 0, len(keys))}
	for i, enc := range keys {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(enc)))
		if err != nil || len(k) != storeKeySize {
			// Neither the key nor the decoder's message (which quotes a byte
			// of it) goes into the error.
			return nil, configError(fmt.Sprintf("StoreKeys[%d]", i), "must be %d random bytes in standard base64 (44 characters, as `openssl rand -base64 32` prints them); it is not", storeKeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, configError(fmt.Sprintf("StoreKeys[%d]", i), "is not an AES key: %v", err)
		}
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, configError(fmt.Sprintf("StoreKeys[%d]", i), "cannot make AES-GCM: %v", err)
		}
		r.keys = append(r.keys, sealKey{id: storeKeyID(k), aead: aead})
	}
	return r, nil
}

// storeKeyID names a key in the envelope. It reveals nothing useful about
// the key: 32 bits of a hash of 256 random bits.
func storeKeyID(key []byte) [keyIDSize]byte {
	h := sha256.New()
	h.Write([]byte("fhirware/smart store key\x00"))
	h.Write(key)
	var id [keyIDSize]byte
	copy(id[:], h.Sum(nil))
	return id
}

// sealAAD is the additional data of a seal: the envelope's header and the
// storage key.
func sealAAD(header []byte, key string) []byte {
	aad := make([]byte, 0, len(header)+len(key))
	return append(append(aad, header...), key...)
}

// seal returns plain sealed for the storage key, or plain itself for the
// nil ring.
func (r *keyRing) seal(key string, plain []byte) []byte {
	if r == nil {
		return plain
	}
	k := &r.keys[0]
	out := make([]byte, sealHeader, sealOverhead+len(plain))
	out[0] = sealVersion
	copy(out[1:], k.id[:])
	return k.aead.Seal(out, nil, plain, sealAAD(out[:sealHeader], key))
}

// unsealError says why a record does not open. It wraps errUnsealable and
// carries no part of the record.
type unsealError struct{ reason string }

func (e *unsealError) Error() string { return errUnsealable.Error() + ": " + e.reason }
func (e *unsealError) Unwrap() error { return errUnsealable }

var (
	errNotSealed    = &unsealError{"it is not sealed"}
	errSealFormat   = &unsealError{"its envelope is malformed or of an unknown version"}
	errUnknownKey   = &unsealError{"it names a key that is not configured"}
	errTampered     = &unsealError{"it fails authentication (changed, or stored under another key)"}
	errSealedNoKeys = &unsealError{"it is sealed, and Config.StoreKeys is empty"}
)

// open returns the record sealed in b for the storage key. With the nil
// ring, b is returned as it is unless it is sealed; with keys, b must be
// sealed by one of them for this key: an unsealed value is refused, so
// that whoever can write to the store cannot plant a record.
func (r *keyRing) open(key string, b []byte) ([]byte, error) {
	if r == nil {
		if len(b) > 0 && b[0] == sealVersion {
			return nil, errSealedNoKeys
		}
		return b, nil
	}
	if len(b) == 0 || b[0] != sealVersion {
		if len(b) > 0 && b[0] == '{' {
			return nil, errNotSealed
		}
		return nil, errSealFormat
	}
	if len(b) < sealOverhead {
		return nil, errSealFormat
	}
	id, aad := b[1:sealHeader], sealAAD(b[:sealHeader], key)
	err := errUnknownKey
	for i := range r.keys {
		k := &r.keys[i]
		if string(k.id[:]) != string(id) {
			continue
		}
		plain, oerr := k.aead.Open(nil, nil, b[sealHeader:], aad)
		if oerr == nil {
			return plain, nil
		}
		err = errTampered // another key may share the id: try it too
	}
	return nil, err
}

// unsealed returns err when it is errUnsealable, as the cause of the error
// that treats its record as missing, and nil for any other err.
func unsealed(err error) error {
	if errors.Is(err, errUnsealable) {
		return err
	}
	return nil
}
