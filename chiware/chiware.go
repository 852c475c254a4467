package chiware

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/internal/hooks"
)

// Router is a chi.Router with the SMART routes GET /launch, GET /callback
// and POST /logout. Every route added to it runs behind the ready
// middleware, inside the browser session. Mount it where the app lives:
//
//	r.Mount("/fhir", s)
type Router struct {
	chi.Router // the app routes, behind RequireReady

	mux   *chi.Mux // the launch routes and the app routes
	smart *adapters.App
}

// New validates cfg and returns a Router. Middleware added to the Router
// with Use runs on its app routes, after the ready step; middleware for
// every route, the SMART ones included (a request id, a recoverer), goes
// on the router the Router is mounted in. An invalid Config gives a
// *core.Error with Code core.CodeInvalidConfig whose message names the
// field.
func New(cfg adapters.Config) (*Router, error) {
	s, err := adapters.New(cfg)
	if err != nil {
		return nil, err
	}
	mux := chi.NewRouter()
	for _, rt := range hooks.Routes(s) {
		mux.Method(rt.Method, rt.Path, rt.Handler)
	}
	return &Router{Router: mux.With(s.RequireReady), mux: mux, smart: s}, nil
}

// Smart is like [New] but panics, with New's message, if the Config is
// invalid. Like regexp.MustCompile, it is for a Config written in the
// program, where an error is the programmer's.
func Smart(cfg adapters.Config) *Router { return hooks.Must(New(cfg)) }

// ServeHTTP serves the SMART routes and the app routes.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) { r.mux.ServeHTTP(w, req) }

// RequireReady is the ready middleware, for routes outside the mount. It
// shares the Router's engine and caches: requests with a usable launch get
// the ReadyClient, others the error page (401).
func (r *Router) RequireReady(next http.Handler) http.Handler { return r.smart.RequireReady(next) }

// LoadReady is the ready middleware that lets requests without a launch
// through, with no ReadyClient; see [adapters.App.LoadReady].
func (r *Router) LoadReady(next http.Handler) http.Handler { return r.smart.LoadReady(next) }

// Engine returns the engine behind the Router's handlers, for the
// app's use outside HTTP handlers.
func (r *Router) Engine() *core.Engine { return r.smart.Engine() }

// ReadyClient returns the launch's client put in the request by the ready
// middleware, or nil.
func ReadyClient(r *http.Request) *core.ReadyClient { return adapters.FromContext(r.Context()) }

// URL returns the app URL ref with the request's launch handle in its
// query; see [adapters.URL].
func URL(r *http.Request, ref string) string { return adapters.URL(r, ref) }

// Error answers a failed request as the SMART routes do (see
// adapters.Error): the error page, or JSON, with the status of the error's
// code, its cause logged and never shown.
func Error(w http.ResponseWriter, r *http.Request, err error) { adapters.Error(w, r, err) }
