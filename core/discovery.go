package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
)

// Discovery is what an issuer's SMART configuration says, as far as the
// engine uses it: from {iss}/.well-known/smart-configuration, or the
// oauth-uris extension of the CapabilityStatement at {iss}/metadata when
// there is none. Relative URLs are resolved, and every endpoint has passed
// the issuer-binding rule (SECURITY.md). AuthorizationEndpoint is empty for
// a server of Backend Services only, which SMART lets leave it out.
type Discovery struct {
	// Issuer is the authorization server's issuer identifier: the iss of
	// its id_tokens. It is empty when the configuration came from the
	// CapabilityStatement, which does not carry one.
	Issuer                string `json:"issuer"`
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
}

// Discover returns what the issuer iss (a FHIR base URL the app accepts)
// declares: its endpoints and capabilities, fetched on first use and cached
// for an hour, as a launch would find them. The result is the
// caller's copy.
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
// resolved against the document they came from.
func (e *Engine) discover(ctx context.Context, is *Issuer) (*Discovery, error) {
	wellKnown := is.URL + "/.well-known/smart-configuration"
	d, err := e.fetchSmartConfiguration(ctx, is, wellKnown)
	if err == nil {
		return d, nil
	}
	e.log.LogAttrs(ctx, logWarn, "smart-configuration unusable, trying the CapabilityStatement",
		slogIssuer(is), attrErr(err))
	d, err2 := e.fetchCapabilityStatement(ctx, is, is.URL+"/metadata")
	if err2 != nil {
		return nil, fmt.Errorf("%s: %w; %s/metadata: %w", wellKnown, err, is.URL, err2)
	}
	return d, nil
}

func (e *Engine) fetchJSON(ctx context.Context, is *Issuer, rawURL, accept string, v any) error {
	resp, err := e.send(ctx, is, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, rawURL, nil)
		if err == nil {
			req.Header.Set("Accept", accept)
		}
		return req, err
	})
	if err != nil {
		return err
	}
	body, err := readBody(resp)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("answered %s", resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	return nil
}

func (e *Engine) fetchSmartConfiguration(ctx context.Context, is *Issuer, docURL string) (*Discovery, error) {
	var d Discovery
	if err := e.fetchJSON(ctx, is, docURL, "application/json", &d); err != nil {
		return nil, err
	}
	if err := d.resolve(docURL, e.cfg.AllowInsecureHTTP); err != nil {
		return nil, err
	}
	return &d, nil
}

// capabilityStatement holds the parts of a CapabilityStatement that carry
// OAuth endpoints.
type capabilityStatement struct {
	ResourceType string `json:"resourceType"`
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
	if err := e.fetchJSON(ctx, is, docURL, "application/fhir+json", &cs); err != nil {
		return nil, err
	}
	d, err := cs.oauthEndpoints()
	if err != nil {
		return nil, err
	}
	if err := d.resolve(docURL, e.cfg.AllowInsecureHTTP); err != nil {
		return nil, err
	}
	return d, nil
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

// resolve makes every endpoint absolute against base and checks the ones the
// launch needs. The authorization endpoint may be absent (SMART requires it
// only of servers that support launches: one of Backend Services only has
// none, and Launch refuses such an issuer), but not unusable.
func (d *Discovery) resolve(base string, allowHTTP bool) error {
	b, err := url.Parse(base)
	if err != nil {
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
