package smarttest

import (
	"context"
	"crypto"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
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
	// *ecdsa.PublicKey or a jose.JSONWebKey. When it is set, JWKSURL is
	// not used.
	PublicKey crypto.PublicKey
	// JWKSURL registers a private_key_jwt client by the URL of its JWK
	// Set: an assertion must name a kid, and is verified with the key of
	// that kid, used for signatures and the assertion's algorithm. The
	// set is fetched at the first assertion and cached; a kid the cached
	// set lacks fetches it once more, so a client can rotate its keys.
	JWKSURL string
	// RedirectURIs lists the accepted redirect_uri values. When empty, any
	// absolute URL is accepted.
	RedirectURIs []string
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
	if c.PublicKey == nil && c.JWKSURL == "" {
		return fmt.Errorf("client %q has no registered public key", c.ID)
	}
	tok, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.RS384, jose.ES384})
	if err != nil {
		return fmt.Errorf("client_assertion: %w", err)
	}
	var pub any = c.PublicKey
	if pub == nil {
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
	case !slices.Contains([]string(claims.Audience), tokenURL):
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
