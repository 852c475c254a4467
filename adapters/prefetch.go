package adapters

import (
	"net/http"

	"github.com/fhirware/smart/internal/hooks"
)

// On a store across the network (Redis, PostgreSQL), the ready step needs
// two reads: the browser's session, which names the browser, and the
// launch record, which must belong to it. The engine keys launch records
// by handle alone, so when the request names its launch, the ready
// middleware starts reading the record before the session loads, and the
// two reads overlap: one round trip of latency. The engine then checks the
// record against the browser the session names, exactly as it checks a
// record it reads itself: a record of another browser is no launch.

// serveReady is the ready middleware for a router (hooks.Serve): next runs
// behind the ready step, in the browser session, unless the step answered.
func (a *App) serveReady(w http.ResponseWriter, r *http.Request, require bool, next func(http.ResponseWriter, *http.Request)) (ran bool) {
	a.readySessions(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r, ran = a.ready(w, r, require); ran {
			next(w, r)
		}
	})).ServeHTTP(w, r)
	return ran
}

// readySessions is [App.Sessions] for the ready middleware: the launch
// record that the request's handle names is read at the same time as the
// browser session.
func (a *App) readySessions(next http.Handler) http.Handler {
	sessions := a.Sessions(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, stop := a.prefetch(r)
		defer stop()
		sessions.ServeHTTP(w, r)
	})
}

// prefetch starts reading the launch record the request's handle names
// or, without a handle, the one the App guesses from the session cookie
// (see latest.go), unless the session is loaded already (nothing to
// overlap), the request has no session cookie (there is no launch to find:
// no read is started that the request would not have made), or the
// engine's Storage is in the process or cannot interrupt a read. It
// returns the request to serve, which carries the read to the engine's
// Ready, and the function that ends the read, to call when the request is
// served.
func (a *App) prefetch(r *http.Request) (*http.Request, func()) {
	if a.browser.Loaded(r.Context()) || !hooks.PrefetchesLaunch(a.engine) {
		return r, noStop
	}
	cookie := cookieValue(r, a.browser.SessionManager().Cookie.Name)
	if cookie == "" {
		return r, noStop
	}
	handle := Handle(r)
	if handle == "" && !a.requireHandle {
		handle = a.latest.get(cookie)
	}
	if handle == "" {
		return r, noStop
	}
	ctx, stop := hooks.PrefetchLaunch(r.Context(), a.engine, handle)
	if ctx == r.Context() {
		return r, noStop
	}
	return r.WithContext(ctx), stop
}

func noStop() {}
