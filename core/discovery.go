package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Discovery is what an issuer's SMART configuration says, as far as the
// engine uses it: from {iss}/.well-known/smart-configuration, or the
// oauth-uris extension of the CapabilityStatement at {iss}/metadata when
// there is none. When the scope the app asks of the issuer has openid and
// the configuration names no issuer or jwks_uri (a CapabilityStatement
// never does), they come from the authorization server's OpenID Connect
// Discovery document (see [Engine.Discover]). Relative URLs are resolved,
// and every endpoint has passed the issuer-binding rule (SECURITY.md).
// AuthorizationEndpoint is empty for a server of Backend Services only,
// which SMART lets leave it out.
type Discovery struct {
	// Issuer is the authorization server's issuer identifier: the iss of
	// its id_tokens. It is empty when neither the smart-configuration nor
	// an OpenID configuration named one, or the latter was not asked for
	// (the scope has no openid).
	Issuer string `json:"issuer"`
	// JWKSURI is the URL of the key set that verifies its id_tokens; empty
	// as Issuer is.
	JWKSURI               string `json:"jwks_uri"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
	// Capabilities are the SMART capabilities, such as "launch-ehr" and
	// "context-ehr-patient".
	Capabilities []string `json:"capabilities"`
	// IssParameterSupported says the server sends RFC 9207's iss with
	// every authorization response.
	IssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
	// FHIRVersion is the FHIR version of the server, the
	// CapabilityStatement's fhirVersion, such as "4.0.1". It is known only
	// when the CapabilityStatement was fetched, that is when the issuer
	// has no smart-configuration, and is empty otherwise, or when the
	// CapabilityStatement names none (or something that is not a
	// version). When it is known, the launch's FHIR requests ask for it
	// (Accept: application/fhir+json; fhirVersion=4.0).
	FHIRVersion string `json:"-"`

	fromMetadata bool // the configuration came from the CapabilityStatement
}

// Discover returns what the issuer iss (a FHIR base URL the app accepts)
// declares: its endpoints and capabilities, fetched on first use and cached
// for an hour, as a launch would find them. The result is the
// caller's copy. When fetching it again fails, the cached configuration is
// used a minute longer at a time, for at most an hour past its expiry.
//
// When the scope the app asks of iss (Issuer.Scope or Config.Scope) has
// openid, the engine launches (it has a CallbackURL), and the
// smart-configuration names no issuer or jwks_uri, or there is none, the
// OpenID Connect Discovery document of the authorization
// server is read for them: at {issuer}/.well-known/openid-configuration,
// where the issuer is Issuer.AuthorizationServer when configured, else
// the smart-configuration's issuer, else the URL the authorization and
// token endpoints share (their origin and the path both begin with: for
// https://ehr.example/oauth2/authorize and https://ehr.example/oauth2/token,
// https://ehr.example/oauth2). The document's issuer must be the one it is
// published under (OpenID Connect Discovery 1.0 section 4.3; when the
// issuer was guessed from the endpoints, with or without a trailing "/")
// and, with its jwks_uri, pass the issuer-binding rule; otherwise it is
// not used. Discover does not fail when nothing names an issuer and key
// set: a launch that asks for openid does ([Engine.Launch]).
func (e *Engine) Discover(ctx context.Context, iss string) (*Discovery, error) {
	const op = "discover"
	if len(iss) > maxParamLen {
		return nil, newError(op, CodeInvalidRequest, "the issuer is too long", nil)
	}
	is, err := e.issuer(op, iss)
	if err != nil {
		return nil, err
	}
	as, err := e.server(ctx, op, is)
	if err != nil {
		return nil, err
	}
	d := *as.disc
	d.Capabilities = slices.Clone(d.Capabilities)
	return &d, nil
}

// oauthURIs is the extension URL of the CapabilityStatement's OAuth endpoints.
const oauthURIs = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"

// discover fetches {iss}/.well-known/smart-configuration and falls back to
// the oauth-uris extension of {iss}/metadata. Relative endpoint URLs are
// resolved against the document they came from. It returns how long the
// result may be cached: discoveryTTL, or only fallbackRetryTTL when the
// smart-configuration could not be had for a reason that may pass (no
// answer, a 5xx or a 429), so that an EHR that has one is not read from
// its CapabilityStatement (without a key set, say) for an hour after a
// blip.
func (e *Engine) discover(ctx context.Context, is *Issuer) (*Discovery, time.Duration, error) {
	wellKnown := is.URL + "/.well-known/smart-configuration"
	d, status, err := e.fetchSmartConfiguration(ctx, is, wellKnown)
	if err == nil {
		return d, discoveryTTL, nil
	}
	e.log.LogAttrs(ctx, logWarn, "smart-configuration unusable, trying the CapabilityStatement",
		slogIssuer(is), attrErr(err))
	d, err2 := e.fetchCapabilityStatement(ctx, is, is.URL+"/metadata")
	if err2 != nil {
		return nil, 0, fmt.Errorf("%s: %w; %s/metadata: %w", wellKnown, err, is.URL, err2)
	}
	if status == 0 || status >= 500 || status == http.StatusTooManyRequests {
		return d, fallbackRetryTTL, nil
	}
	return d, discoveryTTL, nil
}

// fetchJSON fetches a JSON document through the engine's client and
// decodes it into v. It returns the answer's status, 0 when there was
// none.
func (e *Engine) fetchJSON(ctx context.Context, is *Issuer, rawURL, accept string, v any) (int, error) {
	resp, err := e.send(ctx, is, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, rawURL, nil)
		if err == nil {
			req.Header.Set("Accept", accept)
		}
		return req, err
	})
	if err != nil {
		return 0, err
	}
	body, err := readBody(resp)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("answered %s", resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return resp.StatusCode, fmt.Errorf("malformed JSON: %w", err)
	}
	return resp.StatusCode, nil
}

// fetchSmartConfiguration fetches and checks a smart-configuration. It
// returns the answer's status, 0 when there was none.
func (e *Engine) fetchSmartConfiguration(ctx context.Context, is *Issuer, docURL string) (*Discovery, int, error) {
	var d Discovery
	status, err := e.fetchJSON(ctx, is, docURL, "application/json", &d)
	if err != nil {
		return nil, status, err
	}
	if err := d.resolve(docURL, e.cfg.AllowInsecureHTTP); err != nil {
		return nil, status, err
	}
	return &d, status, nil
}

// capabilityStatement holds the parts of a CapabilityStatement that carry
// OAuth endpoints, and its FHIR version.
type capabilityStatement struct {
	ResourceType string `json:"resourceType"`
	FHIRVersion  any    `json:"fhirVersion"` // a string, or it is ignored: never a reason to fail discovery
	Rest         []struct {
		Security struct {
			Extension []struct {
				URL       string `json:"url"`
				Extension []struct {
					URL      string `json:"url"`
					ValueURI string `json:"valueUri"`
				} `json:"extension"`
			} `json:"extension"`
		} `json:"security"`
	} `json:"rest"`
}

func (e *Engine) fetchCapabilityStatement(ctx context.Context, is *Issuer, docURL string) (*Discovery, error) {
	var cs capabilityStatement
	if _, err := e.fetchJSON(ctx, is, docURL, "application/fhir+json", &cs); err != nil {
		return nil, err
	}
	d, err := cs.oauthEndpoints()
	if err != nil {
		return nil, err
	}
	if err := d.resolve(docURL, e.cfg.AllowInsecureHTTP); err != nil {
		return nil, err
	}
	if v, ok := cs.FHIRVersion.(string); ok {
		d.FHIRVersion = fhirVersion(v)
	}
	d.fromMetadata = true
	return d, nil
}

// majorMinor returns the major.minor form of a FHIR version ("4.0" of
// "4.0.1"), the value of FHIR's fhirVersion media type parameter, or ""
// when v is not a version.
func majorMinor(v string) string {
	if v = fhirVersion(v); v == "" {
		return ""
	}
	major, rest, _ := strings.Cut(v, ".")
	minor, _, _ := strings.Cut(rest, ".")
	minor, _, _ = strings.Cut(minor, "-")
	return major + "." + minor
}

// fhirVersion returns v when it is a FHIR version as CapabilityStatements
// write them ("4.0.1", "4.3.0", "5.0.0-ballot"): two or three numbers of
// at most three digits, and an optional label of letters, digits and
// dots; "" otherwise. It is the EHR's text, and goes into a header.
func fhirVersion(v string) string {
	number, label, labelled := strings.Cut(v, "-")
	parts := strings.Split(number, ".")
	if len(v) > 32 || len(parts) < 2 || len(parts) > 3 || (labelled && label == "") {
		return ""
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return ""
		}
	}
	if strings.Trim(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.") != "" {
		return ""
	}
	return v
}

// oauthEndpoints reads the oauth-uris extension.
func (cs *capabilityStatement) oauthEndpoints() (*Discovery, error) {
	if cs.ResourceType != "CapabilityStatement" {
		return nil, errors.New("not a CapabilityStatement")
	}
	var d Discovery
	for _, r := range cs.Rest {
		for _, ext := range r.Security.Extension {
			if ext.URL != oauthURIs {
				continue
			}
			for _, sub := range ext.Extension {
				switch sub.URL {
				case "authorize":
					d.AuthorizationEndpoint = sub.ValueURI
				case "token":
					d.TokenEndpoint = sub.ValueURI
				case "revoke":
					d.RevocationEndpoint = sub.ValueURI
				}
			}
		}
	}
	return &d, nil
}

// An issuer's configuration stays in the engine's cache, for every issuer
// a launch names with AllowAnyIssuer: within the 1 MiB response cap, a
// hostile EHR's list of 200,000 short capabilities would hold 4 MiB of
// memory per issuer, a thousand issuers 4 GiB. Real configurations list a
// few dozen capabilities and name URLs of a few hundred bytes.
const (
	maxCapabilities  = 256
	maxCapabilityLen = 256
	maxEndpointLen   = 4096 // an endpoint's or the issuer's URL
)

// checkSize refuses a configuration whose capabilities or issuer are
// beyond the bounds above. An endpoint's URL beyond them is unusable (see
// resolve).
func (d *Discovery) checkSize() error {
	if len(d.Capabilities) > maxCapabilities {
		return fmt.Errorf("%d capabilities, more than %d", len(d.Capabilities), maxCapabilities)
	}
	for _, c := range d.Capabilities {
		if len(c) > maxCapabilityLen {
			return fmt.Errorf("a capability of %d bytes, more than %d", len(c), maxCapabilityLen)
		}
	}
	if len(d.Issuer) > maxEndpointLen {
		return fmt.Errorf("an issuer of %d bytes, more than %d", len(d.Issuer), maxEndpointLen)
	}
	return nil
}

// resolve makes every endpoint absolute against base and checks them.
// The authorization endpoint may be absent (SMART App Launch 2.2 requires
// it only of servers that support launches: one of Backend Services only
// has none, and Launch refuses such an issuer), but not unusable.
func (d *Discovery) resolve(base string, allowHTTP bool) error {
	b, err := url.Parse(base)
	if err != nil {
		return err
	}
	if err := d.checkSize(); err != nil {
		return err
	}
	for _, f := range []struct {
		name     string
		p        *string
		required bool // must be usable when present
		absentOK bool // may be absent
	}{
		{"authorization_endpoint", &d.AuthorizationEndpoint, true, true},
		{"token_endpoint", &d.TokenEndpoint, true, false},
		{"jwks_uri", &d.JWKSURI, false, true},
		{"revocation_endpoint", &d.RevocationEndpoint, false, true},
	} {
		if len(*f.p) > maxEndpointLen {
			if f.required {
				return fmt.Errorf("%s is longer than %d bytes", f.name, maxEndpointLen)
			}
			*f.p = "" // an unusable optional endpoint is left out
			continue
		}
		if *f.p == "" {
			if !f.absentOK {
				return fmt.Errorf("no %s", f.name)
			}
			continue
		}
		u, err := b.Parse(*f.p)
		switch {
		case err != nil:
			err = fmt.Errorf("%s: %w", f.name, err)
		case u.Scheme != "https" && !(allowHTTP && u.Scheme == "http"):
			err = fmt.Errorf("%s must be https", f.name)
		case u.Host == "":
			err = fmt.Errorf("%s has no host", f.name)
		}
		if err != nil && f.required {
			return err
		}
		if err != nil {
			*f.p = "" // an unusable optional endpoint is left out
			continue
		}
		*f.p = u.String()
	}
	return nil
}
