package ginware

import (
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/internal/hooks"
)

// Group is the *gin.RouterGroup of the app routes: every route added to it
// runs behind the ready middleware, inside the browser session. New has
// added the SMART routes GET /launch, GET /callback and POST /logout to the
// group it was given.
type Group struct {
	*gin.RouterGroup

	smart *adapters.App
}

// New validates cfg, adds the SMART routes to g and returns the group for
// the app routes, with g's base path. An invalid Config gives a *core.Error
// with Code core.CodeInvalidConfig whose message names the field.
func New(g *gin.RouterGroup, cfg adapters.Config) (*Group, error) {
	s, err := adapters.New(cfg)
	if err != nil {
		return nil, err
	}
	for _, rt := range hooks.Routes(s) {
		g.Handle(rt.Method, rt.Path, gin.WrapH(rt.Handler))
	}
	sg := &Group{smart: s}
	sg.RouterGroup = g.Group("", sg.RequireReady)
	return sg, nil
}

// Smart is like [New] but panics, with New's message, if the Config is
// invalid. Like regexp.MustCompile, it is for a Config written in the
// program, where an error is the programmer's.
func Smart(g *gin.RouterGroup, cfg adapters.Config) *Group { return hooks.Must(New(g, cfg)) }

// RequireReady is the ready middleware, for routes outside the group. It
// shares the Group's engine and caches: requests with a usable launch get
// the ReadyClient, others the error page (401).
func (g *Group) RequireReady(c *gin.Context) { g.session(c, true) }

// LoadReady is the ready middleware that lets requests without a launch
// through, with no ReadyClient; see [adapters.App.LoadReady].
func (g *Group) LoadReady(c *gin.Context) { g.session(c, false) }

// Engine returns the engine behind the Group's handlers, for the
// app's use outside HTTP handlers.
func (g *Group) Engine() *core.Engine { return g.smart.Engine() }

// session runs the rest of the chain inside the browser session and behind
// the ready step, with c.Writer wrapped so that the session is saved before
// the headers go out.
func (g *Group) session(c *gin.Context, require bool) {
	routePattern(c)
	orig, req := c.Writer, c.Request
	// The session's request ends with it: middleware above sees its own.
	defer func() { c.Request = req }()
	ran := hooks.Serve(g.smart, orig, req, require, func(w http.ResponseWriter, r *http.Request) {
		c.Request = r
		if w != http.ResponseWriter(orig) {
			c.Writer = &sessionWriter{ResponseWriter: orig, session: w}
			defer func() { c.Writer = orig }()
		}
		c.Next()
	})
	if !ran {
		c.Abort()
	}
}

// sessionWriter is gin's writer with the writes that send the headers
// going first through the session's writer, which saves the session and
// adds its cookie before passing them on.
type sessionWriter struct {
	gin.ResponseWriter
	session http.ResponseWriter // scs's writer over ResponseWriter
}

func (w *sessionWriter) WriteHeader(code int)              { w.session.WriteHeader(code) }
func (w *sessionWriter) Write(b []byte) (int, error)       { return w.session.Write(b) }
func (w *sessionWriter) WriteString(s string) (int, error) { return io.WriteString(w.session, s) }

func (w *sessionWriter) WriteHeaderNow() {
	w.session.WriteHeader(w.Status())
	w.ResponseWriter.WriteHeaderNow()
}

func (w *sessionWriter) Flush() {
	w.WriteHeaderNow()
	w.ResponseWriter.Flush()
}

// ReadyClient returns the launch's client put in the request by the ready
// middleware, or nil.
func ReadyClient(c *gin.Context) *core.ReadyClient { return adapters.FromContext(c.Request.Context()) }

// URL returns the app URL ref with the request's launch handle in its
// query; see [adapters.URL].
func URL(c *gin.Context, ref string) string { return adapters.URL(c.Request, ref) }

// Error answers a failed request as the SMART routes do (see
// adapters.Error): the error page, or JSON, with the status of the error's
// code, its cause logged and never shown; and aborts the handler chain.
func Error(c *gin.Context, err error) {
	adapters.Error(c.Writer, c.Request, err)
	c.Abort()
}

// routePattern sets the request's Pattern to gin's route path, as
// net/http's ServeMux and chi do, so that the adapters' logs name the
// route ("/fhir/api/patient/:id") rather than the path, which may hold an
// id.
func routePattern(c *gin.Context) {
	if c.Request.Pattern == "" {
		c.Request.Pattern = c.FullPath()
	}
}
