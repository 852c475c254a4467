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
//     the CapabilityStatement at /metadata, FHIR 4.0.1) to find the
//     endpoints. The issuer there, and in id_tokens, is AuthIssuer(), not
//     the FHIR base; AuthIssuer()+"/.well-known/openid-configuration" is
//     its OpenID Connect Discovery document, for apps that find no issuer
//     or key set in the SMART configuration.
//  2. The browser goes to AuthorizeURL(); the server approves at once (PKCE
//     S256 and aud = FHIRBaseURL() required) and redirects back with a code.
//  3. The app exchanges the code at TokenURL() with its registered client
//     authentication and gets an access token, the launch context, an
//     id_token (scope openid) and a refresh token (scope offline_access or
//     online_access).
//  4. The app reads and writes FHIR resources under FHIRBaseURL() with the
//     bearer token.
//  5. At logout the app may revoke its tokens at RevocationURL() (RFC 7009,
//     advertised as revocation_endpoint unless
//     Options.NoRevocationEndpoint), authenticating as at the token
//     endpoint (a client assertion's aud is TokenURL()). A revoked refresh
//     token ends its grant: it gets invalid_grant and the grant's access
//     tokens 401; a revoked access token alone 401s. Unknown tokens are
//     answered 200, as RFC 7009 asks. [Server.RevokedTokens] lists what
//     was revoked.
//
// SMART Backend Services skip the browser: a client registered with
// private_key_jwt (by its PublicKey, its JWKS or its JWKSURL) and the
// system scopes it may get (Client.SystemScope) posts
// grant_type=client_credentials with a client assertion (iss = sub =
// client id, aud = TokenURL(), exp at most five minutes ahead, a jti never
// used before, signed by the key its kid names) and a scope of system/
// scopes, and gets an access token, without refresh token or launch
// context, that reads any patient. Each refused token request is answered
// with its OAuth error (invalid_client, invalid_scope,
// unauthorized_client, invalid_grant) and listed by [Server.Refusals].
//
// The sample data has deterministic ids: patients pat-1 (Amy Shaw, 12
// observations), pat-2 (Daniel Adams, 5) and pat-3 (Maria Garcia, 3);
// practitioners prac-1 and prac-2; encounters enc-1 and enc-2 (pat-1), enc-3
// (pat-2) and enc-4 (pat-3, in progress); observations obs-1 … obs-20,
// each at its own time in 2024, made in date order per patient; conditions
// cond-1 … cond-4, with onsets from 2001 to 2019. Each server has its own
// copy, so tests can write freely.
//
// # Search
//
// GET FHIRBaseURL()+"/{Type}?…" searches, as a FHIR R4 server does, with
// these parameters. A parameter given twice must hold both times (AND); a
// comma separates alternatives (OR), and "\," is a literal comma. A
// parameter with an empty value is ignored.
//
//	every type   _id           token: the resource's id
//	             _lastUpdated  date: meta.lastUpdated
//	             patient       reference: a resource whose subject or patient is
//	                           Patient/ID (given as ID, Patient/ID or an absolute
//	                           reference), or that patient itself
//	             subject       reference: the same, given as ID (a Patient) or
//	                           Type/ID or an absolute reference
//	Observation  date          effectiveDateTime, effectivePeriod or effectiveInstant,
//	                           else issued
//	             code          token: code.coding
//	             category      token: category[].coding
//	Condition    date          onsetDateTime or onsetPeriod, else recordedDate
//	                           (R4 names these onset-date and recorded-date)
//	             code          token: code.coding
//	             category      token: category[].coding
//	Encounter    date          period (a period without an end goes on)
//
// A date value is YYYY, YYYY-MM, YYYY-MM-DD or a dateTime
// (YYYY-MM-DDThh:mm[:ss[.fff]] with Z or ±hh:mm; UTC without one) and
// stands for the whole span it names, after an optional prefix: eq (the
// default; the resource's date lies within the span), ne, lt, le, gt, ge,
// sa (starts after) or eb (ends before). So date=ge2024-01-01&date=lt2025
// is the year 2024. A "+" of a zone that reached the server as a space
// is read as "+". A token value is code (any system), system|code, |code
// (a coding without a system) or system| (any code of that system).
//
// Result parameters:
//
//	_sort     comma-separated keys, "-" first for descending: date (the
//	          type's date above; a period by its start), _lastUpdated, _id.
//	          Resources without a value sort last either way; ties keep
//	          the order of creation, so pages neither skip nor repeat.
//	_count    page size, 20 by default, 1000 at most; 0 gives the total
//	          alone. The Bundle's next link carries _count and _offset,
//	          smarttest's own paging parameter.
//	_summary  count gives the total alone; true, text, data and false
//	          give whole resources, as FHIR allows.
//	_format   a JSON type is honoured (every answer is JSON); another is
//	          not supported.
//	_elements, _pretty, _total  harmlessly ignored: whole resources, an
//	          accurate total.
//
// Any other parameter (_include, _revinclude, _has, modifiers such as
// code:text, chains, the prefix ap, date on a type without one) is not
// supported. By default, or with "Prefer: handling=lenient", the search
// runs without it and the Bundle's first entry is an OperationOutcome
// (search mode "outcome") with a warning, code not-supported, naming each
// parameter; with "Prefer: handling=strict" the answer is 400 with that
// OperationOutcome as an error. The searches of a batch follow the batch
// request's Prefer. The Bundle's self link lists only the parameters
// applied; next links carry the same. A malformed value of a supported
// parameter is 400, code invalid. The CapabilityStatement lists the
// search parameters per type.
//
// [Faults] make the server slow, failing, malformed or hostile, and
// [Server.Count], [Server.FHIRTokens], [Server.FHIRAccepts] let tests see
// what a client did. The
// EHR page at URL()+"/" lists the patients with a launch link each, for
// browser tests and the examples.
//
// The server is for tests and local sandboxes only: it approves every
// authorization request and keeps everything in memory.
package smarttest
