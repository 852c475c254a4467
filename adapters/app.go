package adapters

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/internal/hooks"
	"github.com/fhirware/smart/sessions"
)

// App is the HTTP side of a SMART app: the launch, callback and logout
// handlers and the ready middleware, sharing one core.Engine (with its
// discovery cache and key sets) and one browser session manager. Build it
// once, when the app starts, with [New] or [Smart]; it is safe for
// concurrent use.
//
// Every handler and middleware of App runs inside the browser session: it
// loads the session itself unless an outer handler already did (another of
// the same App's, or the app's own LoadAndSave of the same manager), so
// they can be combined and nested freely.
type App struct {
	engine  *core.Engine
	browser *sessions.Browser
	log     *slog.Logger
	render  ErrorRenderer

	redirect      *url.URL
	logoutURL     string
	origin        string        // the app's origin, from its CallbackURL
	pendingTTL    time.Duration // the engine's PendingLaunchTTL
	ehrLaunchOnly bool
	requireHandle bool

	launch, callback, logout http.Handler
	latest                   *latestGuesses // the handles of sessions' most recent launches, as guesses

	warnOnce sync.Once
}

func init() {
	hooks.Serve = func(app any, w http.ResponseWriter, r *http.Request, require bool, next func(http.ResponseWriter, *http.Request)) bool {
		return app.(*App).serveReady(w, r, require, next)
	}
	hooks.Routes = func(app any) []hooks.Route { return app.(*App).routes() }
}

// routes are the App's own routes. Each names itself on the request
// (Request.Pattern) when the router has not, as echo's and gin's do not,
// so that a log line names the route, never the path.
func (a *App) routes() []hooks.Route {
	rts := []hooks.Route{
		{Method: http.MethodGet, Path: "/launch", Handler: a.launch},
		{Method: http.MethodGet, Path: "/callback", Handler: a.callback},
		{Method: http.MethodPost, Path: "/logout", Handler: a.logout},
	}
	for i, rt := range rts {
		rts[i].Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Pattern == "" {
				r.Pattern = rt.Path
			}
			rt.Handler.ServeHTTP(w, r)
		})
	}
	return rts
}

// New validates cfg and returns an App. An invalid Config gives a
// *core.Error with Code core.CodeInvalidConfig whose message names the
// field, such as "Config.CallbackURL must be the absolute URL …" or
// "Config.SessionManager.Cookie.Domain is … __Host- cookies may not have a
// Domain …".
//
// New sets the cookie attributes of Config.SessionManager that
// Config.Cookies requires, on a manager you pass too: see
// Config.SessionManager.
func New(cfg Config) (*App, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if cfg.Engine != nil {
		logger = cfg.Engine.Config().Logger
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	browser := sessions.New(cfg.SessionManager,
		sessions.WithStoreTimeout(cfg.StoreTimeout), sessions.WithCookies(cfg.Cookies), sessions.WithLogger(logger))
	engine, err := cfg.engine(browser.Storage(), func(l core.Locker) core.Locker {
		return boundLocker(l, cfg.StoreTimeout)
	})
	if err != nil {
		return nil, err
	}
	if err := checkCookie(&cfg, engine, browser); err != nil {
		return nil, err
	}
	redirect, _ := url.Parse(cfg.RedirectURL) // checked
	ec := engine.Config()                     // a copy: read once, not on each request
	a := &App{
		engine:        engine,
		browser:       browser,
		log:           ec.Logger,
		render:        cfg.RenderError,
		redirect:      redirect,
		logoutURL:     cfg.LogoutURL,
		origin:        originOf(ec.CallbackURL),
		pendingTTL:    ec.PendingLaunchTTL,
		ehrLaunchOnly: cfg.EHRLaunchOnly,
		requireHandle: cfg.RequireHandle,
		latest:        newLatestGuesses(),
	}
	if a.render == nil {
		a.render = RenderError
	}
	if cfg.SessionManager == nil {
		browser.SessionManager().ErrorFunc = a.storeError
	}
	a.launch = a.Sessions(http.HandlerFunc(a.serveLaunch))
	a.callback = a.Sessions(http.HandlerFunc(a.serveCallback))
	a.logout = a.Sessions(http.HandlerFunc(a.serveLogout))
	return a, nil
}

// originOf is the origin (scheme://host[:port]) of an absolute URL, as
// browsers send it in Origin.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// Smart is like [New] but panics, with New's message, if the Config is
// invalid. Like regexp.MustCompile, it is for a Config written in the
// program, where an error is the programmer's. Every router package has a
// Smart of its own, on the same terms.
func Smart(cfg Config) *App { return hooks.Must(New(cfg)) }

// Engine returns the engine shared by the handlers, for the app's use
// outside HTTP handlers.
func (a *App) Engine() *core.Engine { return a.engine }

// Sessions is middleware that loads the browser session before next and
// saves it, with its cookie, before the response's first byte (the session
// manager's LoadAndSave, each store operation bounded by
// Config.StoreTimeout). It does nothing when an outer handler has loaded
// the session already: another of the App's, or the app's own LoadAndSave
// of the same manager.
//
// When the session store fails, on a manager New made, the request is
// answered with 503, and nothing that next writes afterwards reaches the
// browser.
func (a *App) Sessions(next http.Handler) http.Handler {
	load := a.browser.LoadAndSave(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.browser.Loaded(r.Context()) {
			next.ServeHTTP(w, r)
			return
		}
		a.warnOnce.Do(a.warnStore)
		// One per request, never recycled: a write after the handler has
		// returned must not reach another request's response.
		load.ServeHTTP(&storeGuard{ResponseWriter: w}, r)
	})
}

// storeGuard passes the response through until the session store's
// failure has answered it, and then drops what the handler writes after:
// the answer is the 503, not the page the handler went on to write. It
// knows the store answered when storeError says so, or when a second
// status comes after the first (the manager's own ErrorFunc, such as
// sessions.StoreErrorFunc, wrote the first while scs saved the session).
type storeGuard struct {
	http.ResponseWriter
	wrote    bool // a status went out
	answered bool
}

func (g *storeGuard) WriteHeader(code int) {
	switch {
	case g.answered:
	case g.wrote:
		g.answered = true
	default:
		g.wrote = true
		g.ResponseWriter.WriteHeader(code)
	}
}

func (g *storeGuard) Write(b []byte) (int, error) {
	if g.answered {
		return 0, errAnswered
	}
	g.wrote = true
	return g.ResponseWriter.Write(b)
}

// Unwrap returns the ResponseWriter the guard wraps, for
// http.ResponseController.
func (g *storeGuard) Unwrap() http.ResponseWriter { return g.ResponseWriter }

var errAnswered = errors.New("adapters: the response was already answered with the session store's failure")

// storeError answers a failure of the session store to load or save a
// browser session (503): the ErrorFunc of a manager New makes.
func (a *App) storeError(w http.ResponseWriter, r *http.Request, err error) {
	a.Error(w, r, &core.Error{Op: "session", Code: core.CodeStorageUnavailable,
		Description: "the session store is not available; try again later", Err: err})
	if g, ok := w.(*storeGuard); ok {
		g.answered = true
	}
}

// Handler returns the whole SMART side of an app as one http.Handler, for
// apps without a router: GET /launch, GET /callback and POST /logout, and
// every other path served by app behind [App.RequireReady]. Mount it under
// a prefix with http.StripPrefix:
//
//	mux.Handle("/fhir/", http.StripPrefix("/fhir", s.Handler(app)))
func (a *App) Handler(app http.Handler) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range a.routes() {
		mux.Handle(rt.Method+" "+rt.Path, rt.Handler)
	}
	mux.Handle("/", a.RequireReady(app))
	return mux
}

// warnStore logs, once, at the first request (when the store is known for
// sure: the README's one-line swap may come after New), what a shared store
// lacks: a Locker, without which callbacks, refreshes and launch lists are
// atomic within this instance only; and StoreKeys, without which tokens
// and launch contexts sit in Redis or PostgreSQL readable by anyone who can
// read the store.
func (a *App) warnStore() {
	cfg := a.engine.Config()
	store := slog.String("store", fmt.Sprintf("%T", a.browser.SessionManager().Store))
	st, ok := cfg.Storage.(*sessions.Storage)
	if !ok {
		if !a.browser.Storage().InProcess() {
			// A shared engine (Config.Engine) with a storage of its own,
			// while the browsers' sessions are in a shared store.
			a.log.Warn("the browser sessions are in a store several app instances may share, but the engine keeps its records elsewhere, in "+
				fmt.Sprintf("%T", cfg.Storage)+": if it is this process's memory, a callback or request that reaches another instance finds no launch; "+
				"give the engine sessions.NewStorageFromManager(sm), or a Storage those instances share", store)
		}
		return
	}
	if st.InProcess() {
		return
	}
	if cfg.Locker == nil {
		a.log.Warn("the session store may be shared by several app instances and Config.Locker is nil: callbacks, refreshes and launch lists are atomic within this instance only; set Config.Locker", store)
	}
	if len(cfg.StoreKeys) == 0 {
		a.log.Warn("the session store is not in memory and Config.StoreKeys is empty: tokens and launch contexts are stored unencrypted; set StoreKeys", store)
	}
}

// boundLocker bounds each call of l by d (sessions.DefaultStoreTimeout
// when 0; none when negative), as the session store's operations are.
func boundLocker(l core.Locker, d time.Duration) core.Locker {
	if d == 0 {
		d = sessions.DefaultStoreTimeout
	}
	if d < 0 {
		return l
	}
	return &timedLocker{l: l, d: d}
}

type timedLocker struct {
	l core.Locker
	d time.Duration
}

func (t *timedLocker) TryLock(ctx context.Context, key string, ttl time.Duration) (func(context.Context) error, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	unlock, ok, err := t.l.TryLock(ctx, key, ttl)
	if err != nil || !ok {
		return nil, ok, err
	}
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, t.d)
		defer cancel()
		return unlock(ctx)
	}, true, nil
}
