// Package core is the framework-agnostic engine of SMART App Launch 2.2: it
// lets a web app be launched from an EHR, keeps the tokens on the server,
// and reads and writes the launched patient's FHIR data.
//
// An app builds one [Engine] from a [Config] when it starts, and for each
// request binds it to the browser session with [Engine.Session]. A launch is
// three requests:
//
//  1. The EHR opens the app's launch URL with iss and launch.
//     [Session.Launch] discovers the issuer's endpoints (cached), keeps a
//     pending launch under a fresh state with a PKCE verifier and a nonce,
//     and returns the authorize URL to redirect to.
//  2. The EHR redirects to the callback URL with code and state.
//     [Session.Callback] checks the state (this session's, unexpired, single
//     use), exchanges the code, verifies the id_token, stores the launch
//     under a new opaque handle and returns the app URL carrying it.
//  3. Every app request calls [Session.Ready], which loads the launch (by
//     handle, or the session's most recent) and returns a [ReadyClient]:
//     the launch context and FHIR access with a token kept fresh.
//
// The engine keeps its records in a [Storage]; the sessions package makes
// one of any scs store. The adapters package and the chiware, echoware and
// ginware packages wrap all this in HTTP handlers. Every error is an
// [*Error] with a stable [Code]. No token ever appears in an error message,
// a log line or a URL.
package core
