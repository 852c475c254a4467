package core

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// An authorization server is identified by what the app configured, never
// by what a discovery document says about itself. The rule, stated once in
// SECURITY.md, is enforced here:
//
//   - the issuer a smart-configuration declares, its jwks_uri and its
//     authorization, token and revocation endpoints are on the origin of
//     the launch's iss, or (for a configured issuer that names one) on the
//     origin of Issuer.AuthorizationServer, which the declared issuer must
//     then equal exactly;
//   - with AllowAnyIssuer, an issuer that is not configured may not be on
//     the origin of a configured issuer or of a configured authorization
//     server, so it can never claim an identity a configured one owns;
//   - a client secret or extra header is never sent for an issuer that is
//     not configured (New refuses them on DefaultIssuer);
//   - the callback proves which server answered: the RFC 9207 iss must name
//     the launch's server when present; when absent, the callback must have
//     come to a redirect_uri of the launch's server alone (unless
//     Config.InsecureAcceptMissingIss).

// origin returns u's scheme, host and port, the unit of trust of the web,
// in one spelling for every way of writing them that reaches the same
// server: lower case, the host as IDNA maps it for a lookup (so fullwidth
// and other mapped characters are what Go's HTTP client dials), no
// trailing dot, IP addresses in their canonical form, the port as a number
// and left out when it is the scheme's default.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.String()
	} else if ascii, err := idna.Lookup.ToASCII(host); err == nil {
		host = ascii
	}
	port := u.Port()
	if n, err := strconv.ParseUint(port, 10, 16); err == nil {
		port = strconv.FormatUint(n, 10)
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}

// originOf returns the origin of an absolute URL, or "" when it is not one.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return ""
	}
	return origin(u)
}

// validateServer checks an issuer's AuthorizationServer, CallbackURL and,
// on DefaultIssuer, that nothing is set that must only go to a known
// server.
func (is *Issuer) validateServer(field string, cfg *Config, any bool) error {
	if any {
		if len(is.Header) > 0 {
			return configError(field+".Header", "is set, but DefaultIssuer's settings go to every issuer a launch names: "+
				"headers would be sent to any server; set them on the Issuers that need them")
		}
		if is.AuthorizationServer != "" {
			return configError(field+".AuthorizationServer", "is set, but an issuer accepted through AllowAnyIssuer must serve its authorization server on its own origin")
		}
	}
	if is.AuthorizationServer != "" {
		u, err := url.Parse(is.AuthorizationServer)
		if err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
			(u.Scheme != "https" && !(u.Scheme == "http" && cfg.AllowInsecureHTTP)) {
			return configError(field+".AuthorizationServer", "must be an https URL without query or fragment (the issuer of the EHR's authorization server), got %q", is.AuthorizationServer)
		}
	}
	if is.CallbackURL != "" && is.CallbackURL != cfg.CallbackURL {
		cb, _ := url.Parse(cfg.CallbackURL) // checked before the issuers
		u, err := url.Parse(is.CallbackURL)
		if err != nil || origin(u) != origin(cb) || u.EscapedPath() != cb.EscapedPath() || u.Fragment != "" {
			return configError(field+".CallbackURL", "must be Config.CallbackURL (%s) with query parameters added, got %q", cfg.CallbackURL, is.CallbackURL)
		}
		q := u.Query()
		for k, vs := range cb.Query() {
			if !slices.Equal(q[k], vs) {
				return configError(field+".CallbackURL", "must keep Config.CallbackURL's query parameter %q", k)
			}
		}
	}
	if is.CallbackURL == "" {
		is.CallbackURL = cfg.CallbackURL
	}
	return nil
}

// errServerBinding is the cause of a discovery refused by the binding rule.
var errServerBinding = errors.New("the SMART configuration points outside the issuer's origin")

// bind checks a discovered configuration against the rule above, for the
// issuer is.
func (e *Engine) bind(is *Issuer, d *Discovery) error {
	home := originOf(is.URL)
	if is.AuthorizationServer != "" {
		if d.Issuer != "" && d.Issuer != is.AuthorizationServer {
			return fmt.Errorf("%w: it declares the issuer %s, but the app is configured with %s", errServerBinding, redactedRaw(d.Issuer), is.AuthorizationServer)
		}
		home = originOf(is.AuthorizationServer)
	}
	for _, f := range []struct{ name, url string }{
		{"issuer", d.Issuer},
		{"jwks_uri", d.JWKSURI},
		{"authorization_endpoint", d.AuthorizationEndpoint},
		{"token_endpoint", d.TokenEndpoint},
		{"revocation_endpoint", d.RevocationEndpoint},
	} {
		if f.url == "" {
			continue
		}
		if o := originOf(f.url); o != home {
			return fmt.Errorf("%w: its %s is on %s, not %s", errServerBinding, f.name, redactedRaw(o), home)
		}
	}
	return nil
}

// redactedRaw keeps a URL from a document short and free of control
// characters, for an error cause (never for a page).
func redactedRaw(s string) string {
	s = printable(s)
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}

// ownedOrigins returns the origins of the configured issuers and of their
// configured authorization servers: an issuer accepted through
// AllowAnyIssuer may not live there.
func ownedOrigins(cfg *Config) map[string]bool {
	owned := map[string]bool{}
	for _, is := range cfg.Issuers {
		owned[originOf(is.URL)] = true
		if is.AuthorizationServer != "" {
			owned[originOf(is.AuthorizationServer)] = true
		}
	}
	return owned
}

// sharesRedirect reports whether the callback of a launch at is cannot by
// itself prove which authorization server answered: another issuer the app
// accepts has a redirect URI that the callback cannot tell from is's (the
// parameters that tell redirect URIs apart have the same values). With
// AllowAnyIssuer that is so for every issuer accepted through it, since any
// number of them share DefaultIssuer's redirect URI.
//
// The client's authentication does not change the answer. A hostile
// server that received an honest server's code need not redeem it itself:
// it can hand the code to the app in a callback of the attacker's own
// launch at the honest server, whose PKCE challenge and nonce it put in the
// request it forwarded, and the app redeems it with the honest server's
// credentials (code injection after a mix-up, RFC 9700 section 4.4).
func (e *Engine) sharesRedirect(is *Issuer) bool {
	key := e.redirectKey(is.CallbackURL)
	if e.cfg.AllowAnyIssuer && e.redirectKey(e.cfg.DefaultIssuer.CallbackURL) == key {
		return true
	}
	for i := range e.cfg.Issuers {
		o := &e.cfg.Issuers[i]
		if o.URL != is.URL && e.redirectKey(o.CallbackURL) == key {
			return true
		}
	}
	return false
}

// redirectKey is what a callback can tell of the redirect URI it came to:
// the values of the parameters that tell redirect URIs apart, in a fixed
// order.
func (e *Engine) redirectKey(redirectURI string) string {
	if len(e.callbackKeys) == 0 {
		return ""
	}
	u, err := url.Parse(redirectURI)
	if err != nil {
		return redirectURI
	}
	q := u.Query()
	v := url.Values{}
	for _, k := range e.callbackKeys {
		v[k] = q[k]
	}
	return v.Encode()
}

// callbackKeys lists the query parameters that tell the issuers' redirect
// URIs apart: those of any Issuer.CallbackURL beyond Config.CallbackURL's.
func callbackKeys(cfg *Config) []string {
	base, _ := url.Parse(cfg.CallbackURL)
	own := base.Query()
	var keys []string
	add := func(raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		for k := range u.Query() {
			if _, ok := own[k]; !ok && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	for _, is := range cfg.Issuers {
		add(is.CallbackURL)
	}
	if cfg.AllowAnyIssuer {
		add(cfg.DefaultIssuer.CallbackURL)
	}
	slices.Sort(keys)
	return keys
}

// checkRedirect reports whether a callback, whose query is q, came to the
// redirect_uri the launch used: every parameter that tells redirect URIs
// apart must have the launch's value (or be absent with it).
func (e *Engine) checkRedirect(redirectURI string, q url.Values) bool {
	if len(e.callbackKeys) == 0 {
		return true
	}
	u, err := url.Parse(redirectURI)
	if err != nil {
		return false
	}
	want := u.Query()
	for _, k := range e.callbackKeys {
		if !slices.Equal(want[k], q[k]) {
			return false
		}
	}
	return true
}

// checkAnswerer makes the callback prove that the authorization server the
// launch went to is the one that answered, before the code goes anywhere
// (RFC 9207, RFC 9700 section 4.4).
func (e *Engine) checkAnswerer(op string, is *Issuer, as *authServer, p *pendingLaunch, iss string, query url.Values) error {
	if !e.checkRedirect(p.redirectURI(e), query) {
		return newError(op, CodeInvalidRequest, "the callback came to the redirect URI of another issuer than the one the launch went to (mix-up defence)", nil)
	}
	if iss != "" {
		if iss == as.disc.Issuer || strings.TrimRight(iss, "/") == is.URL ||
			(as.disc.Issuer == "" && iss == is.AuthorizationServer) {
			return nil
		}
		return newError(op, CodeInvalidRequest, "the callback's iss does not match the issuer the launch went to (RFC 9207 mix-up defence)", nil)
	}
	if as.disc.IssParameterSupported {
		return newError(op, CodeInvalidRequest, "the callback has no iss, though the issuer says it always sends one (RFC 9207)", nil)
	}
	if e.sharesRedirect(is) && !e.cfg.InsecureAcceptMissingIss {
		return newError(op, CodeInvalidRequest, "the callback has no iss, and the app cannot otherwise tell which EHR answered: "+
			"another issuer it accepts shares this redirect URI (RFC 9700 mix-up). "+
			"Have the EHR send iss (RFC 9207), or give each issuer its own Issuer.CallbackURL", nil)
	}
	return nil
}

// redirectURI is the redirect_uri the launch sent: the issuer's
// CallbackURL, or Config.CallbackURL for a launch stored before it was
// recorded.
func (p *pendingLaunch) redirectURI(e *Engine) string {
	if p.RedirectURI != "" {
		return p.RedirectURI
	}
	return e.cfg.CallbackURL
}
