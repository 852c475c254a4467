package core

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"
)

// LaunchContext is everything the EHR said about a launch: the SMART context
// parameters of the token response, the user from the id_token, and the
// granted scope. It is stored whole with the launch and costs no network
// call to read.
type LaunchContext struct {
	// Issuer is the FHIR base URL the launch came from.
	Issuer string `json:"iss"`
	// Patient is the id of the patient in context, or "".
	Patient string `json:"patient,omitempty"`
	// Encounter is the id of the encounter in context, or "".
	Encounter string `json:"encounter,omitempty"`
	// FHIRUser is the user as the id_token's fhirUser claim gave it
	// (absolute or relative), or "".
	FHIRUser string `json:"fhirUser,omitempty"`
	// User is FHIRUser normalised to a type, id and reference.
	User Reference `json:"user,omitzero"`
	// Subject is the id_token's sub, and AuthIssuer its iss.
	Subject    string `json:"sub,omitempty"`
	AuthIssuer string `json:"authIss,omitempty"`
	// FHIRContext is the fhirContext array, item by item as sent.
	FHIRContext []json.RawMessage `json:"fhirContext,omitempty"`
	// NeedPatientBanner says whether the app must show a patient banner.
	NeedPatientBanner bool `json:"need_patient_banner,omitempty"`
	// SmartStyleURL is the EHR's style sheet URL, or "".
	SmartStyleURL string `json:"smart_style_url,omitempty"`
	// Intent is the launch intent, such as "reconcile-medications", or "".
	Intent string `json:"intent,omitempty"`
	// Tenant is the EHR's tenant identifier, or "".
	Tenant string `json:"tenant,omitempty"`
	// Scope is the scope the EHR granted, which may differ from the one
	// asked for.
	Scope string `json:"scope,omitempty"`
	// Expiry is when the access token expires (zero if the EHR gave no
	// lifetime).
	Expiry time.Time `json:"exp,omitzero"`
	// Extra holds the token response's fields this type does not name,
	// except the tokens themselves.
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
}

// HasScope reports whether the granted scope includes s.
func (lc *LaunchContext) HasScope(s string) bool {
	for f := range strings.FieldsSeq(lc.Scope) {
		if f == s {
			return true
		}
	}
	return false
}

// Reference is a FHIR reference split into its parts.
type Reference struct {
	// Type is the resource type, such as "Practitioner".
	Type string `json:"type,omitempty"`
	// ID is the resource id.
	ID string `json:"id,omitempty"`
	// Reference is "Type/ID" when the resource lives on the launch's FHIR
	// server, otherwise the absolute URL as given.
	Reference string `json:"ref,omitempty"`
}

// IsZero reports whether the reference is empty.
func (r Reference) IsZero() bool { return r.Reference == "" }

// ParseReference normalises a FHIR reference, relative ("Practitioner/123")
// or absolute ("https://ehr.example/fhir/Practitioner/123"), against the
// FHIR base URL. An absolute reference under base becomes relative; one on
// another server keeps its URL. A "_history/n" suffix is dropped. It returns
// false for anything that is not a reference to a resource, and for any
// reference with a "." or ".." path segment (percent-encoded or not).
func ParseReference(base, ref string) (Reference, bool) {
	if ref == "" {
		return Reference{}, false
	}
	abs := strings.Contains(ref, "://")
	path := ref
	if abs {
		u, err := url.Parse(ref)
		if err != nil || u.Host == "" {
			return Reference{}, false
		}
		u.RawQuery, u.Fragment = "", ""
		full := u.String()
		if b := strings.TrimRight(base, "/") + "/"; base != "" && strings.HasPrefix(full, b) {
			path, abs = strings.TrimPrefix(full, b), false
		} else {
			path = strings.TrimLeft(u.Path, "/")
		}
		if hasDotSegment(u.Path) { // decoded: %2e%2e is a dot segment too
			return Reference{}, false
		}
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if hasDotSegment(path) {
		return Reference{}, false
	}
	if n := len(parts); n >= 4 && parts[n-2] == "_history" {
		parts = parts[:n-2]
	}
	if len(parts) < 2 {
		return Reference{}, false
	}
	typ, id := parts[len(parts)-2], parts[len(parts)-1]
	if !validType(typ) || !validID(id) || (!abs && len(parts) != 2) {
		return Reference{}, false
	}
	r := Reference{Type: typ, ID: id, Reference: typ + "/" + id}
	if abs {
		r.Reference = strings.TrimSuffix(ref, "/")
	}
	return r, true
}

// hasDotSegment reports whether a URL path has a "." or ".." segment, with
// "/" or a backslash (which some servers take for "/") as separators.
// Such a path names another resource than it seems to once a server or
// proxy resolves it, so no URL the engine builds or follows may have one.
func hasDotSegment(path string) bool {
	for seg := range strings.FieldsFuncSeq(path, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// validType reports whether s looks like a FHIR resource type name.
func validType(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validID reports whether s is a FHIR id: [A-Za-z0-9\-\.]{1,64}, and not
// "." or "..", which FHIR's pattern allows but which are dot segments in a
// URL path: "Patient/.." would name the FHIR base, not a patient.
func validID(s string) bool {
	if s == "" || len(s) > 64 || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// knownTokenFields are the token response fields LaunchContext names or that
// must never be copied (the tokens).
var knownTokenFields = map[string]bool{
	"access_token": true, "refresh_token": true, "id_token": true, "token_type": true,
	"expires_in": true, "scope": true, "patient": true, "encounter": true,
	"fhirContext": true, "need_patient_banner": true, "smart_style_url": true,
	"intent": true, "tenant": true,
}

// launchContextFrom builds the launch context from a token response.
func launchContextFrom(iss string, tr *tokenResponse, now time.Time) LaunchContext {
	lc := LaunchContext{Issuer: iss, Scope: tr.Scope, Expiry: tr.expiry(now)}
	str := func(k string) string {
		var s string
		if raw, ok := tr.raw[k]; ok && json.Unmarshal(raw, &s) != nil {
			s = strings.Trim(string(raw), `"`)
		}
		return s
	}
	lc.Patient, lc.Encounter = str("patient"), str("encounter")
	lc.SmartStyleURL, lc.Intent, lc.Tenant = str("smart_style_url"), str("intent"), str("tenant")
	if raw, ok := tr.raw["need_patient_banner"]; ok {
		var b bool
		if json.Unmarshal(raw, &b) == nil {
			lc.NeedPatientBanner = b
		}
	}
	if raw, ok := tr.raw["fhirContext"]; ok {
		_ = json.Unmarshal(raw, &lc.FHIRContext) // malformed context is dropped, not fatal
	}
	for k, v := range tr.raw {
		if !knownTokenFields[k] {
			if lc.Extra == nil {
				lc.Extra = map[string]json.RawMessage{}
			}
			lc.Extra[k] = v
		}
	}
	return lc
}
