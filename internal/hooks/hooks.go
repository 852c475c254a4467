// Package hooks lets the router packages (chiware, echoware, ginware) reach
// what the adapters package shares with them but not with apps: the ready
// step and the SMART routes. The adapters package sets the hooks when it is
// initialised.
package hooks

import "net/http"

// Ready runs the ready step of app (an *adapters.App) for a request inside
// its browser session: it returns the request with the launch's client in
// its context and true, or answers the request and returns false. With
// require false, a request without a usable launch goes on, with the load
// error in its context.
var Ready func(app any, w http.ResponseWriter, r *http.Request, require bool) (*http.Request, bool)

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
