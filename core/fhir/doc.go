// Package fhir is a FHIR R4 REST client for any server and any *http.Client:
// read, search, create, update, patch, delete, batch and transaction.
//
// A [Client] knows its FHIR server's base URL and the *http.Client it
// sends every request through; it knows nothing of how that client
// authenticates. For a server that wants an OAuth 2.0 bearer token, give
// it an authenticated client:
//
//	hc := oauth2.NewClient(ctx, tokenSource) // golang.org/x/oauth2
//	c, err := fhir.NewClient("https://ehr.example/fhir", hc)
//
// In an app launched with SMART on FHIR, a launch's ReadyClient (package
// core) hands out a Client bound to the launch: ReadyClient.FHIR() adds
// the launch's token on the FHIR server's origin only, and refreshes it.
//
// Resources are JSON, decoded into the caller's own types: there is no
// FHIR model here. [Read] and [Search] are the generic forms:
//
//	p, err := fhir.Read[Patient](ctx, c, "Patient/123")
//	for obs, err := range fhir.Search[Observation](ctx, c, "Observation", q, fhir.Limit(5)) { … }
//
// Searches page through Bundles as an iterator, and follow next links on
// the base URL's origin only. Writes go to the base URL's server only.
// Every failure is an *[Error], whose message names the request by method
// and resource type and never carries an id or a search parameter, which
// may identify a patient; errors.Is(err, [ErrNotFound]) tests for 404 and
// 410. The client reads at most 64 MiB of any answer.
package fhir
