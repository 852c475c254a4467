// Package core is the engine of SMART App Launch 2.2, without HTTP handlers
// or a session library: it launches a web app from an EHR, keeps the tokens
// on the server, and hands out a FHIR client for the launched patient.
//
// An app builds one [Engine] from a [Config] when it starts and shares it.
// Each browser is named by an opaque, unguessable id that the app keeps in
// the browser's session (the sessions package keeps it in a cookie). A
// launch is three requests:
//
//  1. The EHR opens the app's launch URL with iss and launch.
//     [Engine.Launch] discovers the issuer's endpoints (cached), keeps a
//     pending launch under a fresh state with a PKCE verifier and a nonce,
//     and returns the authorize URL to redirect to.
//  2. The EHR redirects to the callback URL with code and state.
//     [Engine.Callback] checks the state (this browser's, unexpired, single
//     use), exchanges the code, verifies the id_token, and stores the
//     launch under a new opaque handle.
//  3. Every app request calls [Engine.Ready] with the handle, which loads
//     the launch and returns a [ReadyClient]: the launch context, and the
//     launch's FHIR client ([ReadyClient.FHIR], a core/fhir client) with a
//     token kept fresh.
//
// SMART Backend Services need no browser: [Engine.Backend] returns a FHIR
// client for a configured issuer that acts as the app itself, over a
// token got with grant_type=client_credentials and a private_key_jwt
// assertion for system/ scopes, kept fresh and shared. An engine for
// Backend Services only needs no Config.CallbackURL.
//
// The engine keeps its records in Config.Storage (in memory by default;
// the sessions package makes one of any scs store) and takes
// Config.Locker's lock when several app instances share them. The adapters
// package and the chiware, echoware and ginware packages wrap all this in
// HTTP handlers. Every error is an [*Error] with a stable [Code]; a FHIR
// server's error answer is a *fhir.Error. No token ever appears in an
// error message, a log line or a URL.
//
// The engine makes OpenTelemetry spans and metrics through the API, with
// Config.TracerProvider and Config.MeterProvider (the global providers by
// default): a span for each launch, callback, ready step, refresh and
// request to the EHR, children of the span in the context the engine is
// called with. None of them holds a token, a code, a state, a handle, a
// cookie, an id of a patient, encounter or user, or a URL query.
package core
