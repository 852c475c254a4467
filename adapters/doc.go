// Package adapters is the net/http side of a SMART app: the launch,
// callback and logout handlers and the ready middleware, shared by every
// router.
//
// The chiware, echoware and ginware packages translate it to their router's
// idiom; an app without a router uses it as it is:
//
//	s := adapters.Smart(cfg)
//	mux.Handle("/fhir/", http.StripPrefix("/fhir", s.Handler(app)))
//
// A launch is three requests:
//
//  1. GET /launch?iss=…&launch=… (or ?iss=… alone, a standalone launch):
//     the browser is sent to the EHR's authorize endpoint; its session (a
//     cookie and an id, through the sessions package) is created when the
//     launch succeeds.
//  2. GET /callback?code=…&state=…: the code is exchanged, the session gets
//     a new token (against session fixation), and the browser is sent to
//     Config.RedirectURL with the new launch handle in its query.
//  3. Every app request: the ready middleware loads the launch named by the
//     handle ([HandleParam] query parameter or [HandleHeader] header), or
//     the browser's most recent one, and puts its *core.ReadyClient in the
//     request context, where [FromContext] finds it. [URL] builds app
//     links that keep the handle, so every tab stays on its own launch.
//
// POST /logout ends the browser's launches, revoking their tokens at EHRs
// that advertise a revocation endpoint, and answers 204, or sends a
// browser to Config.LogoutURL.
//
// Failures are answered by [Error]: the cause is logged with slog, and the
// browser gets an HTML page, or JSON {"error", "error_description"} when
// it asks for application/json, with the status of the error's code (400,
// 401, 403, 404, 502, 503). No response or log line holds a token.
//
// The engine behind the handlers is built from Config.Config, or shared:
// build one with core.New and pass it as Config.Engine, to use the same
// engine, with its caches, in the app's background code.
package adapters
