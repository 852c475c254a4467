package smarttest

import (
	"net/http"
)

// oauthURIs is the CapabilityStatement extension that carries the
// authorization server's endpoints.
const oauthURIs = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"

// fhirJSON is the media type of FHIR JSON bodies.
const fhirJSON = "application/fhir+json"

// scopesSupported lists the scopes the smart-configuration advertises.
func scopesSupported() []string {
	return []string{
		"openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter",
		"offline_access", "online_access",
		"patient/*.rs", "patient/*.cruds", "user/*.rs", "user/*.cruds",
		"patient/*.read", "patient/*.write", "user/*.read", "user/*.write",
		"system/*.rs", "system/*.cruds", "system/*.read", "system/*.write",
	}
}

func (s *Server) serveSmartConfiguration(w http.ResponseWriter, r *http.Request) {
	if s.opts.NoSmartConfiguration {
		s.writeOAuthError(w, http.StatusNotFound, "not_found", "smart-configuration is switched off", EndpointDiscovery)
		return
	}
	root := s.root(r)
	ref := root
	if s.opts.RelativeEndpoints {
		ref = ""
	}
	conf := map[string]any{
		"issuer":                 root + "/auth",
		"jwks_uri":               ref + "/auth/jwks",
		"authorization_endpoint": ref + "/auth/authorize",
		"token_endpoint":         ref + "/auth/token",
		"grant_types_supported":  []string{"authorization_code", "refresh_token", "client_credentials"},
		"token_endpoint_auth_methods_supported": []AuthMethod{
			AuthPrivateKeyJWT, AuthClientSecretBasic, AuthClientSecretPost, AuthPublic,
		},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS384", "ES384"},
		"scopes_supported":         scopesSupported(),
		"response_types_supported": []string{"code"},
		"capabilities": []string{
			"launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric",
			"client-confidential-asymmetric", "context-ehr-patient", "context-ehr-encounter",
			"context-standalone-patient", "sso-openid-connect", "permission-patient",
			"permission-user", "permission-offline", "permission-v1", "permission-v2",
		},
		"code_challenge_methods_supported": []string{"S256"},
	}
	if !s.opts.NoRevocationEndpoint {
		conf["revocation_endpoint"] = ref + "/auth/revoke"
	}
	if s.opts.AuthorizationResponseIss {
		conf["authorization_response_iss_parameter_supported"] = true
	}
	s.writeJSON(w, r, http.StatusOK, "application/json", s.withDocumentFields(EndpointDiscovery, conf), EndpointDiscovery)
}

// serveOpenIDConfiguration serves the authorization server's OpenID
// Connect Discovery 1.0 document: its issuer (AuthIssuer, under whose URL
// the document is published) and key set, with the fields the
// specification requires.
func (s *Server) serveOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	if s.opts.NoOpenIDConfiguration {
		s.writeOAuthError(w, http.StatusNotFound, "not_found", "the OpenID configuration is switched off", EndpointOpenIDConfiguration)
		return
	}
	root := s.root(r)
	conf := map[string]any{
		"issuer":                                root + "/auth",
		"jwks_uri":                              root + "/auth/jwks",
		"authorization_endpoint":                root + "/auth/authorize",
		"token_endpoint":                        root + "/auth/token",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{s.opts.IDTokenAlg},
		"scopes_supported":                      []string{"openid", "fhirUser", "profile", "offline_access"},
		"code_challenge_methods_supported":      []string{"S256"},
	}
	s.writeJSON(w, r, http.StatusOK, "application/json", s.withDocumentFields(EndpointOpenIDConfiguration, conf), EndpointOpenIDConfiguration)
}

// resourceTypes returns the types the CapabilityStatement lists; the server
// stores any type.
func resourceTypes() []string {
	return []string{"Patient", "Practitioner", "Encounter", "Observation", "Condition"}
}

func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	root := s.root(r)
	ref := root
	if s.opts.RelativeEndpoints {
		ref = ".." // relative to /fhir/metadata and to the base /fhir
	}
	var resources []any
	for _, t := range resourceTypes() {
		resources = append(resources, map[string]any{
			"type": t,
			"interaction": []any{
				map[string]any{"code": "read"}, map[string]any{"code": "vread"},
				map[string]any{"code": "search-type"}, map[string]any{"code": "create"},
				map[string]any{"code": "update"}, map[string]any{"code": "patch"},
				map[string]any{"code": "delete"},
			},
			"searchParam": searchParams(t),
		})
	}
	uris := []any{
		map[string]any{"url": "authorize", "valueUri": ref + "/auth/authorize"},
		map[string]any{"url": "token", "valueUri": ref + "/auth/token"},
	}
	if !s.opts.NoRevocationEndpoint {
		uris = append(uris, map[string]any{"url": "revoke", "valueUri": ref + "/auth/revoke"})
	}
	cs := map[string]any{
		"resourceType": "CapabilityStatement",
		"status":       "active",
		"date":         "2024-01-01",
		"kind":         "instance",
		"fhirVersion":  fhirVersion,
		"format":       []string{"json"},
		"implementation": map[string]any{
			"description": "smarttest sandbox EHR",
			"url":         root + "/fhir",
		},
		"rest": []any{map[string]any{
			"mode": "server",
			"security": map[string]any{
				"service": []any{map[string]any{"coding": []any{map[string]any{
					"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
					"code":   "SMART-on-FHIR",
				}}}},
				"extension": []any{map[string]any{
					"url":       oauthURIs,
					"extension": uris,
				}},
			},
			"resource":    resources,
			"interaction": []any{map[string]any{"code": "batch"}, map[string]any{"code": "transaction"}},
		}},
	}
	s.writeJSON(w, r, http.StatusOK, fhirJSON, s.withDocumentFields(EndpointMetadata, cs), EndpointMetadata)
}
