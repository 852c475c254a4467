package echoware

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/internal/hooks"
)

// Group is the *echo.Group of the app routes: every route added to it runs
// behind the ready middleware, inside the browser session. New has added
// the SMART routes GET /launch, GET /callback and POST /logout to the
// group it was given.
type Group struct {
	*echo.Group

	smart *adapters.App
}

// New validates cfg, adds the SMART routes to g and returns the group for
// the app routes, with g's prefix. An invalid Config gives a *core.Error
// with Code core.CodeInvalidConfig whose message names the field.
func New(g *echo.Group, cfg adapters.Config) (*Group, error) {
	s, err := adapters.New(cfg)
	if err != nil {
		return nil, err
	}
	for _, rt := range hooks.Routes(s) {
		g.Add(rt.Method, rt.Path, echo.WrapHandler(rt.Handler))
	}
	sg := &Group{smart: s}
	sg.Group = g.Group("", sg.RequireReady)
	return sg, nil
}

// Smart is like [New] but panics, with New's message, if the Config is
// invalid. Like regexp.MustCompile, it is for a Config written in the
// program, where an error is the programmer's.
func Smart(g *echo.Group, cfg adapters.Config) *Group { return hooks.Must(New(g, cfg)) }

// RequireReady is the ready middleware, for routes outside the group. It
// shares the Group's engine and caches: requests with a usable launch get
// the ReadyClient, others the error page (401).
func (g *Group) RequireReady(next echo.HandlerFunc) echo.HandlerFunc {
	return g.session(next, true)
}

// LoadReady is the ready middleware that lets requests without a launch
// through, with no ReadyClient; see [adapters.App.LoadReady].
func (g *Group) LoadReady(next echo.HandlerFunc) echo.HandlerFunc {
	return g.session(next, false)
}

// Engine returns the engine behind the Group's handlers, for the
// app's use outside HTTP handlers.
func (g *Group) Engine() *core.Engine { return g.smart.Engine() }

// session runs next behind the ready step, inside the browser session,
// with the response going through the session's writer so the session is
// saved before the first byte. An error next returns is answered there
// too, for the same reason, and then returned, as echo's own middleware do.
func (g *Group) session(next echo.HandlerFunc, require bool) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		res, req := c.Response(), c.Request()
		routePattern(c)
		orig := res.Writer
		// The session's request ends with it: middleware above sees its own.
		defer func() { res.Writer = orig; c.SetRequest(req) }()
		hooks.Serve(g.smart, orig, req, require, func(w http.ResponseWriter, r *http.Request) {
			res.Writer = w
			c.SetRequest(r)
			if err = next(c); err != nil {
				c.Error(err)
			}
		})
		return err
	}
}

// ReadyClient returns the launch's client put in the request by the ready
// middleware, or nil.
func ReadyClient(c echo.Context) *core.ReadyClient {
	return adapters.FromContext(c.Request().Context())
}

// URL returns the app URL ref with the request's launch handle in its
// query; see [adapters.URL].
func URL(c echo.Context, ref string) string { return adapters.URL(c.Request(), ref) }

// Error answers a failed request as the SMART routes do (see
// adapters.Error): the error page, or JSON, with the status of the error's
// code, its cause logged and never shown. It returns nil, for a handler to
// return: return echoware.Error(c, err).
func Error(c echo.Context, err error) error {
	adapters.Error(c.Response(), c.Request(), err)
	return nil
}

// routePattern sets the request's Pattern to echo's route path, as
// net/http's ServeMux and chi do, so that the adapters' logs name the
// route ("/fhir/api/patient/:id") rather than the path, which may hold an
// id.
func routePattern(c echo.Context) {
	if r := c.Request(); r.Pattern == "" {
		r.Pattern = c.Path()
	}
}
