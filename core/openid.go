package core

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// An issuer's id_tokens are verified against an issuer identifier and a
// key set (jwks_uri) that the EHR names. SMART puts them in the
// smart-configuration; an EHR without one (the CapabilityStatement names
// neither), or whose smart-configuration leaves them out, may still
// publish them as an OpenID provider, at
// {issuer}/.well-known/openid-configuration (OpenID Connect Discovery 1.0).
// The engine reads that document when the app's scope for the issuer has
// openid, so that a launch that cannot verify the id_token it asks for is
// refused before the clinician logs in, with a description of what the EHR
// lacks, rather than after.

// wantsOpenID reports whether the scope the app asks of is has openid
// (an EHR launch and a standalone one differ only in launch). An issuer
// without a callback URL (an engine of Backend Services only) makes no
// launch, and so never needs an id_token verified.
func (e *Engine) wantsOpenID(is *Issuer) bool {
	return is.CallbackURL != "" && hasScope(e.requestedScope(is, true), "openid")
}

// hasScope reports whether the space-separated scope has s.
func hasScope(scope, s string) bool {
	for f := range strings.FieldsSeq(scope) {
		if f == s {
			return true
		}
	}
	return false
}

// idTokenGap says why the id_tokens of an issuer cannot be verified: a
// sentence in the engine's own words for the error's description, and the
// cause, which may quote the EHR, for logs.
type idTokenGap struct {
	lacks string
	cause error
}

// error returns the launch's refusal.
func (g *idTokenGap) error(op string) error {
	return newError(op, CodeDiscoveryFailed, g.lacks+
		", so the id_token that the scope's openid asks for could not be verified, and the launch would fail after the login. "+
		"Drop openid and fhirUser from the scope (Config.Scope, or the issuer's Scope), "+
		"or name the EHR's OpenID issuer in the issuer's AuthorizationServer", g.cause)
}

// errOpenIDAbsent is the cause of a gap where the EHR answered that it
// has no OpenID configuration.
var errOpenIDAbsent = errors.New("no OpenID configuration")

// lookUpOpenID fills the issuer and jwks_uri that d, already bound to
// is, lacks from the authorization server's OpenID configuration, when
// the app asks is for openid. It returns the gap that is left, if any:
// nil when d can verify id_tokens or the app does not ask for them. An
// error is a failure worth another try (the EHR unreachable, or
// answering 5xx or 429), which the engine does not cache.
func (e *Engine) lookUpOpenID(ctx context.Context, is *Issuer, d *Discovery) (*idTokenGap, error) {
	if d.Issuer != "" && d.JWKSURI != "" {
		return nil, nil
	}
	if !e.wantsOpenID(is) {
		return nil, nil
	}
	lacks := "the EHR's SMART configuration (.well-known/smart-configuration) names no issuer or no jwks_uri"
	if d.fromMetadata {
		lacks = "the EHR publishes no SMART configuration (.well-known/smart-configuration), and its CapabilityStatement names no issuer or key set"
	}
	gap := func(why string, cause error) (*idTokenGap, error) {
		return &idTokenGap{lacks: lacks + ", and " + why, cause: cause}, nil
	}

	issuer, exact := d.Issuer, true
	switch {
	case is.AuthorizationServer != "":
		issuer = is.AuthorizationServer
	case issuer == "":
		issuer, exact = sharedIssuer(d.AuthorizationEndpoint, d.TokenEndpoint), false
	}
	docURL := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	if originOf(docURL) != e.home(is) {
		// Only the configured AuthorizationServer, or endpoints already
		// bound to the issuer's origin, name the server: this is never
		// asked of another origin.
		return gap("its authorization server is on another origin than the issuer's", fmt.Errorf("%w: the OpenID issuer %s", errServerBinding, redactedRaw(issuer)))
	}

	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if status, err := e.fetchJSON(ctx, is, docURL, "application/json", &doc); err != nil {
		if status == 0 || retryable(status) {
			return nil, fmt.Errorf("%s: %w", docURL, err)
		}
		if status == http.StatusOK {
			return gap("the OpenID configuration of its authorization server (.well-known/openid-configuration) is malformed", fmt.Errorf("%s: %w", docURL, err))
		}
		return gap("its authorization server publishes no OpenID configuration (.well-known/openid-configuration)", fmt.Errorf("%s: %w: %w", docURL, errOpenIDAbsent, err))
	}
	switch {
	case len(doc.JWKSURI) > maxEndpointLen:
		return gap("the jwks_uri of the OpenID configuration of its authorization server is unusable", fmt.Errorf("%s: a jwks_uri of %d bytes", docURL, len(doc.JWKSURI)))
	case doc.Issuer == "" || doc.JWKSURI == "":
		return gap("the OpenID configuration of its authorization server names no issuer or no jwks_uri", fmt.Errorf("%s: no issuer or no jwks_uri", docURL))
	case doc.Issuer != issuer && (exact || strings.TrimSuffix(doc.Issuer, "/") != strings.TrimSuffix(issuer, "/")):
		// OpenID Connect Discovery 1.0 section 4.3: the issuer must be
		// the URL the document was fetched under.
		return gap("the OpenID configuration of its authorization server declares another issuer than the one it is published under (OpenID Connect Discovery 1.0, section 4.3)",
			fmt.Errorf("%s declares the issuer %s", docURL, redactedRaw(doc.Issuer)))
	}
	jwks, err := absoluteURL(doc.JWKSURI, e.cfg.AllowInsecureHTTP)
	if err != nil {
		return gap("the jwks_uri of the OpenID configuration of its authorization server is unusable", fmt.Errorf("%s: jwks_uri: %w", docURL, err))
	}
	found := *d
	if found.Issuer == "" {
		found.Issuer = doc.Issuer
	}
	if found.JWKSURI == "" {
		found.JWKSURI = jwks
	}
	if err := e.bind(is, &found); err != nil {
		return gap("the OpenID configuration of its authorization server points outside the issuer's origin", fmt.Errorf("%s: %w", docURL, err))
	}
	d.Issuer, d.JWKSURI = found.Issuer, found.JWKSURI
	return nil, nil
}

// home returns the origin every endpoint of is must be on: its
// AuthorizationServer's when configured, else its own (see bind).
func (e *Engine) home(is *Issuer) string {
	if is.AuthorizationServer != "" {
		return originOf(is.AuthorizationServer)
	}
	return originOf(is.URL)
}

// sharedIssuer returns the URL that the authorization and token endpoints
// share: their scheme and host, and the path segments their directories
// begin with ("https://ehr.example/oauth2" for
// "https://ehr.example/oauth2/authorize" and
// "https://ehr.example/oauth2/token"). It is "" when they are on two
// origins.
func sharedIssuer(authorize, token string) string {
	a, err1 := url.Parse(authorize)
	t, err2 := url.Parse(token)
	if err1 != nil || err2 != nil || originOf(authorize) == "" || originOf(authorize) != originOf(token) {
		return ""
	}
	dir := func(u *url.URL) []string {
		segs := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
		return segs[:len(segs)-1] // the endpoint's own name is not the issuer's
	}
	as, ts := dir(a), dir(t)
	n := 0
	for n < len(as) && n < len(ts) && as[n] == ts[n] && as[n] != "" {
		n++
	}
	issuer := t.Scheme + "://" + t.Host
	if n > 0 {
		issuer += "/" + strings.Join(ts[:n], "/")
	}
	return issuer
}

// absoluteURL checks that raw is an absolute https URL (or http with
// allowHTTP) with a host, and returns it.
func absoluteURL(raw string, allowHTTP bool) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", err
	case u.Scheme != "https" && !(allowHTTP && u.Scheme == "http"):
		return "", errors.New("not an https URL")
	case u.Host == "":
		return "", errors.New("no host")
	}
	return u.String(), nil
}
