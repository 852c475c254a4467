// Package smarttest is a fake EHR for tests: a SMART App Launch 2.2
// authorization server and a FHIR R4 server over in-memory sample data,
// running in-process on [net/http/httptest], the way go-oidc's oidctest
// fakes an OpenID provider.
//
// Start one per test, register the app's client and launch:
//
//	ehr := smarttest.NewServer(smarttest.Options{})
//	t.Cleanup(ehr.Close)
//	ehr.RegisterClient(smarttest.Client{ID: "my-app"})
//	launchURL := ehr.EHRLaunchURL(app.URL+"/launch", smarttest.LaunchContext{
//		Patient: "pat-1", Encounter: "enc-1", FHIRUser: "Practitioner/prac-1",
//	})
//
// The flow the server plays:
//
//  1. The app fetches FHIRBaseURL()+"/.well-known/smart-configuration" (or
//     the CapabilityStatement at /metadata) to find the endpoints. The
//     issuer there, and in id_tokens, is AuthIssuer(), not the FHIR base.
//  2. The browser goes to AuthorizeURL(); the server approves at once (PKCE
//     S256 and aud = FHIRBaseURL() required) and redirects back with a code.
//  3. The app exchanges the code at TokenURL() with its registered client
//     authentication and gets an access token, the launch context, an
//     id_token (scope openid) and a refresh token (scope offline_access or
//     online_access).
//  4. The app reads and writes FHIR resources under FHIRBaseURL() with the
//     bearer token.
//
// The sample data has deterministic ids: patients pat-1 (Amy Shaw, 12
// observations), pat-2 (Daniel Adams, 5) and pat-3 (Maria Garcia, 3);
// practitioners prac-1 and prac-2; encounters enc-1 and enc-2 (pat-1), enc-3
// (pat-2) and enc-4 (pat-3); observations obs-1 … obs-20; conditions cond-1
// … cond-4. Each server has its own copy, so tests can write freely.
//
// [Faults] make the server slow, failing, malformed or hostile, and
// [Server.Count], [Server.FHIRTokens] let tests see what a client did. The
// EHR page at URL()+"/" lists the patients with a launch link each, for
// browser tests and the examples.
//
// The server is for tests and local sandboxes only: it approves every
// authorization request and keeps everything in memory.
package smarttest
