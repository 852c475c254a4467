package smarttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds a client's JWKS document.
const maxJWKSBytes = 1 << 20

// jwksFetchTimeout bounds one fetch of a client's JWKS.
const jwksFetchTimeout = 10 * time.Second

// clientKeySets holds the key sets of clients registered by JWKS URL, as
// an EHR caches them: a set is fetched at the first assertion that needs
// it and again only when an assertion names a kid the cached set lacks,
// which is how a rotated key is found.
type clientKeySets struct {
	mu   sync.Mutex
	sets map[string]*jose.JSONWebKeySet // by JWKS URL
}

// key returns the key of the set at jwksURL that verifies an assertion
// with header h: the one whose kid is h's. An unknown kid fetches the set
// once more before it is refused.
func (c *clientKeySets) key(ctx context.Context, jwksURL string, h jose.Header) (*jose.JSONWebKey, error) {
	if h.KeyID == "" {
		return nil, errors.New("client_assertion: kid is missing; the client is registered by JWKS URL")
	}
	c.mu.Lock()
	set := c.sets[jwksURL]
	c.mu.Unlock()
	if set != nil {
		if k := set.Key(h.KeyID); len(k) > 0 {
			return checkClientKey(&k[0], h)
		}
	}
	set, err := fetchJWKS(ctx, jwksURL)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.sets == nil {
		c.sets = make(map[string]*jose.JSONWebKeySet)
	}
	c.sets[jwksURL] = set
	c.mu.Unlock()
	if k := set.Key(h.KeyID); len(k) > 0 {
		return checkClientKey(&k[0], h)
	}
	return nil, fmt.Errorf("client_assertion: kid %q is not in the client's JWKS", h.KeyID)
}

// checkClientKey refuses a key that is not meant to verify the assertion:
// not a public key, not for signatures, or for another algorithm.
func checkClientKey(k *jose.JSONWebKey, h jose.Header) (*jose.JSONWebKey, error) {
	switch {
	case !k.IsPublic():
		return nil, fmt.Errorf("client_assertion: the client's JWKS publishes the private part of kid %q", k.KeyID)
	case k.Use != "" && k.Use != "sig":
		return nil, fmt.Errorf("client_assertion: kid %q has use %q, not sig", k.KeyID, k.Use)
	case k.Algorithm != "" && k.Algorithm != h.Algorithm:
		return nil, fmt.Errorf("client_assertion: kid %q is for %s, the assertion is %s", k.KeyID, k.Algorithm, h.Algorithm)
	}
	return k, nil
}

// fetchJWKS reads the JWKS document at jwksURL.
func fetchJWKS(ctx context.Context, jwksURL string) (*jose.JSONWebKeySet, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURL, nil)
	if err != nil {
		return nil, fmt.Errorf("client JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("client JWKS: %s answered %s", jwksURL, resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJWKSBytes)).Decode(&set); err != nil {
		return nil, fmt.Errorf("client JWKS: %s: %w", jwksURL, err)
	}
	return &set, nil
}
