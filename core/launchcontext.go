package core

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/fhirware/smart/core/fhir"
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
	// User is the user of the id_token's fhirUser claim, such as
	// {Type: "Practitioner", ID: "123"}, with its absolute URL when it is
	// on another server than the launch's; zero when there is none.
	User fhir.Reference `json:"user,omitzero"`
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
	lc.FHIRContext = tr.fhirContext // malformed context is dropped, not fatal
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
