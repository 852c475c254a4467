package smarttest

import (
	"net/url"
	"strings"
)

// LaunchContext is the context an authorization server hands to the app with
// the access token.
type LaunchContext struct {
	// Patient is the patient id ("pat-1").
	Patient string
	// Encounter is the encounter id ("enc-1").
	Encounter string
	// FHIRUser is the user's FHIR resource, relative ("Practitioner/prac-1")
	// or absolute; it goes into the id_token's fhirUser claim as given.
	FHIRUser string
	// FHIRContext is the fhirContext array of the token response.
	FHIRContext []map[string]any
	// NeedPatientBanner is the need_patient_banner token response field.
	NeedPatientBanner bool
	// SmartStyleURL is the smart_style_url token response field.
	SmartStyleURL string
	// Intent is the intent token response field.
	Intent string
	// Tenant is the tenant token response field.
	Tenant string
	// Extra holds further fields added to the token response as they are.
	Extra map[string]any
}

func (lc LaunchContext) isZero() bool {
	return lc.Patient == "" && lc.Encounter == "" && lc.FHIRUser == "" &&
		lc.FHIRContext == nil && !lc.NeedPatientBanner && lc.SmartStyleURL == "" &&
		lc.Intent == "" && lc.Tenant == "" && lc.Extra == nil
}

// NewLaunch records an EHR launch context and returns its opaque launch id,
// the value of the launch parameter. Launch ids don't expire.
func (s *Server) NewLaunch(lc LaunchContext) string {
	id := randomToken(16)
	s.mu.Lock()
	s.launches[id] = lc
	s.mu.Unlock()
	return id
}

// EHRLaunchURL records an EHR launch context and returns the URL the EHR
// opens to launch the app: appLaunchURL with iss (the FHIR base URL) and
// launch added to its query, which is otherwise kept.
func (s *Server) EHRLaunchURL(appLaunchURL string, lc LaunchContext) string {
	return s.ehrLaunchURL(s.FHIRBaseURL(), appLaunchURL, lc)
}

func (s *Server) ehrLaunchURL(iss, appLaunchURL string, lc LaunchContext) string {
	id := s.NewLaunch(lc)
	u, err := url.Parse(appLaunchURL)
	if err != nil {
		sep := "?"
		if strings.Contains(appLaunchURL, "?") {
			sep = "&"
		}
		return appLaunchURL + sep + "iss=" + url.QueryEscape(iss) + "&launch=" + id
	}
	q := u.Query()
	q.Set("iss", iss)
	q.Set("launch", id)
	u.RawQuery = q.Encode()
	return u.String()
}
