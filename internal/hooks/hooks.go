// Package hooks lets the router packages (chiware, echoware, ginware) call
// the adapters' ready step, which is not part of the adapters' API: the
// adapters package sets the hooks when it is initialised.
package hooks

import "net/http"

// Ready runs the ready step of app (an *adapters.App) for a request inside
// its browser session: it returns the request with the launch's client in
// its context and true, or answers the request and returns false. With
// require false, a request without a usable launch goes on, with the load
// error in its context.
var Ready func(app any, w http.ResponseWriter, r *http.Request, require bool) (*http.Request, bool)
