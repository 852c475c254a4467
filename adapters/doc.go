// Package adapters holds the net/http side of a SMART app, shared by every
// router: the launch, callback and logout handlers, the ready middleware
// that puts a *core.ReadyClient in the request context, the browser session
// (through the sessions package) and the one way errors are answered. The
// chiware, echoware and ginware packages translate it to their router's
// idiom; an app without a router uses it as it is:
//
//	s := adapters.MustNew(cfg)
//	mux.Handle("/fhir/", http.StripPrefix("/fhir", s.Handler(app)))
//
// A launch is three requests:
//
//  1. GET /launch?iss=…&launch=… (or ?iss=… alone, a standalone launch):
//     the browser session is created if needed, and the browser is sent to
//     the EHR's authorize endpoint.
//  2. GET /callback?code=…&state=…: the code is exchanged, the session gets
//     a new token (against session fixation), and the browser is sent to
//     Config.RedirectURL with the new launch handle in its query.
//  3. Every app request: the ready middleware loads the launch named by the
//     handle (query parameter core.HandleParam or header
//     core.HandleHeader), or the session's most recent one, and puts its
//     ReadyClient in the request context: core.FromContext(r.Context()).
//     [URL] builds app links that keep the handle, so every tab stays on
//     its own launch.
//
// Failures are answered by [Smart.Error]: the cause is logged with slog, and
// the browser gets an HTML page, or JSON {"error", "error_description"}
// when it asks for application/json, with the status of the error's code
// (400, 401, 403, 502, 503). No response or log line holds a token.
package adapters
