// Package hooks lets the router packages (chiware, echoware, ginware) reach
// what the adapters package shares with them but not with apps: the ready
// step and the SMART routes. The adapters package sets the hooks when it is
// initialised.
package hooks

import "net/http"

// Serve runs the ready middleware of app (an *adapters.App) for a
// router's request: the browser session (the launch record the request
// names read at the same time), the ready step, then next with the
// session's writer and the request with the launch's client in its
// context. It reports whether next ran: when it did not, the ready step
// answered the request. With require false, a request without a usable
// launch goes on to next, with the load error in its context.
var Serve func(app any, w http.ResponseWriter, r *http.Request, require bool, next func(http.ResponseWriter, *http.Request)) bool

// Routes returns the SMART routes of app (an *adapters.App): GET /launch,
// GET /callback and POST /logout.
var Routes func(app any) []Route

// Route is one SMART route.
type Route struct {
	Method, Path string
	Handler      http.Handler
}

// Must returns v, or panics with err's message: the Smart constructors of
// every package, for a Config written in the program.
func Must[T any](v T, err error) T {
	if err != nil {
		panic(err.Error())
	}
	return v
}
