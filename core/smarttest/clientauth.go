package smarttest

import (
	"context"
	"crypto"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// AuthMethod is how a client authenticates at the token endpoint; the
// values are the OAuth token_endpoint_auth_method names.
type AuthMethod string

// The client authentication methods the token endpoint knows.
const (
	// AuthPublic is a public client: client_id only, no secret.
	AuthPublic AuthMethod = "none"
	// AuthClientSecretBasic sends id and secret in an HTTP Basic header.
	AuthClientSecretBasic AuthMethod = "client_secret_basic"
	// AuthClientSecretPost sends client_id and client_secret as form fields.
	AuthClientSecretPost AuthMethod = "client_secret_post"
	// AuthPrivateKeyJWT sends a client_assertion JWT signed with RS384 or
	// ES384 by the client's private key.
	AuthPrivateKeyJWT AuthMethod = "private_key_jwt"
)

// Client is an OAuth client registered with [Server.RegisterClient].
type Client struct {
	// ID is the client_id.
	ID string
	// Auth is the client's token endpoint authentication method. The
	// default is AuthPublic.
	Auth AuthMethod
	// Secret is the shared secret for the client_secret methods.
	Secret string
	// PublicKey verifies private_key_jwt assertions: an *rsa.PublicKey, an
	// *ecdsa.PublicKey or a jose.JSONWebKey. When it is set, JWKS and
	// JWKSURL are not used.
	PublicKey crypto.PublicKey
	// JWKS registers a private_key_jwt client by its JWK Set, given
	// here: an assertion must name a kid, and is verified with the key of
	// that kid, used for signatures and the assertion's algorithm. When it
	// has keys, JWKSURL is not used.
	JWKS jose.JSONWebKeySet
	// JWKSURL registers a private_key_jwt client by the URL of its JWK
	// Set: an assertion must name a kid, and is verified with the key of
	// that kid, used for signatures and the assertion's algorithm. The
	// set is fetched at the first assertion and cached; a kid the cached
	// set lacks fetches it once more, so a client can rotate its keys.
	JWKSURL string
	// RedirectURIs lists the accepted redirect_uri values. When empty, any
	// absolute URL is accepted.
	RedirectURIs []string
	// SystemScope is the space-separated system scopes the client may get
	// with grant_type=client_credentials (SMART Backend Services), such
	// as "system/Patient.rs system/Observation.rs" or "system/*.rs". A
	// request for a scope they do not cover (read as the scope package's
	// Set.Missing reads it: system/*.rs covers system/Patient.read) is
	// refused with invalid_scope. Such requests need Auth
	// AuthPrivateKeyJWT. The default is "": the client may not use
	// client_credentials (unauthorized_client).
	SystemScope string
}

// jwtBearer is the client_assertion_type of private_key_jwt.
const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxAssertionLifetime bounds how far ahead a client assertion's exp may be.
const maxAssertionLifetime = 5 * time.Minute

// RegisterClient registers (or replaces) a client. The authorize and token
// endpoints refuse client ids that are not registered.
func (s *Server) RegisterClient(c Client) {
	if c.Auth == "" {
		c.Auth = AuthPublic
	}
	c.RedirectURIs = append([]string(nil), c.RedirectURIs...)
	c.JWKS.Keys = append([]jose.JSONWebKey(nil), c.JWKS.Keys...)
	s.mu.Lock()
	s.clients[c.ID] = c
	s.mu.Unlock()
}

// authenticateClient authenticates the client of a token request by the
// method it registered. The form must be parsed.
func (s *Server) authenticateClient(r *http.Request, tokenURL string) (Client, error) {
	form := r.PostForm
	id := form.Get("client_id")
	user, pass, hasBasic := r.BasicAuth()
	assertion := form.Get("client_assertion")

	var method AuthMethod
	switch {
	case hasBasic:
		method = AuthClientSecretBasic
		var err1, err2 error
		user, err1 = url.QueryUnescape(user)
		pass, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return Client{}, errors.New("malformed Basic credentials")
		}
		if id != "" && id != user {
			return Client{}, errors.New("client_id differs from the Basic credentials")
		}
		id = user
	case assertion != "" || form.Has("client_assertion_type"):
		method = AuthPrivateKeyJWT
		if id == "" {
			if tok, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.RS384, jose.ES384}); err == nil {
				var c jwt.Claims
				if tok.UnsafeClaimsWithoutVerification(&c) == nil {
					id = c.Issuer
				}
			}
		}
	case form.Has("client_secret"):
		method = AuthClientSecretPost
	default:
		method = AuthPublic
	}

	s.mu.Lock()
	c, ok := s.clients[id]
	s.mu.Unlock()
	if !ok {
		return Client{}, fmt.Errorf("unknown client %q", id)
	}
	if c.Auth != method {
		return Client{}, fmt.Errorf("client %q must authenticate with %s, not %s", id, c.Auth, method)
	}
	switch method {
	case AuthClientSecretBasic:
		if !secretEqual(pass, c.Secret) {
			return Client{}, errors.New("wrong client secret")
		}
	case AuthClientSecretPost:
		if !secretEqual(form.Get("client_secret"), c.Secret) {
			return Client{}, errors.New("wrong client secret")
		}
	case AuthPrivateKeyJWT:
		if err := s.verifyAssertion(r.Context(), c, form.Get("client_assertion_type"), assertion, tokenURL); err != nil {
			return Client{}, err
		}
	}
	return c, nil
}

func secretEqual(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// verifyAssertion checks a private_key_jwt client assertion: RS384 or ES384
// signed by the client's key (its PublicKey, or the key of the assertion's
// kid in its JWKS), iss = sub = client id, aud the token URL, exp present
// and at most five minutes ahead, jti never seen before.
func (s *Server) verifyAssertion(ctx context.Context, c Client, assertionType, assertion, tokenURL string) error {
	if assertionType != jwtBearer {
		return fmt.Errorf("client_assertion_type must be %s", jwtBearer)
	}
	if c.PublicKey == nil && len(c.JWKS.Keys) == 0 && c.JWKSURL == "" {
		return fmt.Errorf("client %q has no registered public key", c.ID)
	}
	tok, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.RS384, jose.ES384})
	if err != nil {
		return fmt.Errorf("client_assertion: %w", err)
	}
	var pub any = c.PublicKey
	switch {
	case pub != nil:
	case len(c.JWKS.Keys) > 0:
		k, err := keyOfSet(&c.JWKS, tok.Headers[0])
		if err != nil {
			return err
		}
		if k == nil {
			return fmt.Errorf("client_assertion: kid %q is not in the client's JWKS", tok.Headers[0].KeyID)
		}
		pub = k
	default:
		if pub, err = s.clientKeys.key(ctx, c.JWKSURL, tok.Headers[0]); err != nil {
			return err
		}
	}
	var claims jwt.Claims
	if err := tok.Claims(pub, &claims); err != nil {
		return fmt.Errorf("client_assertion: %w", err)
	}
	now := s.opts.Now()
	switch {
	case claims.Issuer != c.ID || claims.Subject != c.ID:
		return errors.New("client_assertion: iss and sub must be the client id")
	case !claims.Audience.Contains(tokenURL):
		return fmt.Errorf("client_assertion: aud must be %s", tokenURL)
	case claims.Expiry == nil:
		return errors.New("client_assertion: exp is missing")
	case !now.Before(claims.Expiry.Time()):
		return errors.New("client_assertion: expired")
	case claims.Expiry.Time().After(now.Add(maxAssertionLifetime)):
		return errors.New("client_assertion: exp is more than five minutes ahead")
	case claims.ID == "":
		return errors.New("client_assertion: jti is missing")
	}
	key := c.ID + "\x00" + claims.ID
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.assertionIDs[key] {
		return errors.New("client_assertion: jti was already used")
	}
	s.assertionIDs[key] = true
	return nil
}

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
		if k, err := keyOfSet(set, h); k != nil || err != nil {
			return k, err
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
	if k, err := keyOfSet(set, h); k != nil || err != nil {
		return k, err
	}
	return nil, fmt.Errorf("client_assertion: kid %q is not in the client's JWKS", h.KeyID)
}

// keyOfSet returns the key of set whose kid is h's, checked by
// checkClientKey, or nil and no error when set has none.
func keyOfSet(set *jose.JSONWebKeySet, h jose.Header) (*jose.JSONWebKey, error) {
	if h.KeyID == "" {
		return nil, errors.New("client_assertion: kid is missing; the client is registered by a JWKS")
	}
	if k := set.Key(h.KeyID); len(k) > 0 {
		return checkClientKey(&k[0], h)
	}
	return nil, nil
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
	// MaxBytesReader fails a larger set outright, where a LimitReader would
	// cut it into malformed JSON.
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, maxJWKSBytes)).Decode(&set); err != nil {
		return nil, fmt.Errorf("client JWKS: %s: %w", jwksURL, err)
	}
	return &set, nil
}
