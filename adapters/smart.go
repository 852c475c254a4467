package adapters

import (
	"errors"
	"log/slog"
	"net/http"
	"sync"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/sessions"
)

// Smart is the HTTP side of a SMART app: the launch, callback and logout
// handlers and the ready middleware, sharing one [core.Engine] (with its
// discovery cache and key sets) and one browser session manager. Build it
// once, when the app starts, with [New] or [MustNew]; it is safe for
// concurrent use.
//
// Every handler and middleware of Smart runs inside the browser session:
// it loads the session itself unless an outer handler of the same Smart
// already did, so they can be combined and nested freely.
type Smart struct {
	engine  *core.Engine
	browser *sessions.Browser
	storage core.Storage // the browser's storage, with the Locker when one is set
	log     *slog.Logger
	render  ErrorRenderer

	ehrLaunchOnly bool
	requireHandle bool

	launch, callback, logout http.Handler

	warnOnce  sync.Once
	hasLocker bool
}

// New validates cfg and returns a Smart. An invalid Config gives a
// *core.Error with Code core.CodeInvalidConfig whose message names the
// field, such as "Config.CallbackURL must be the absolute URL …" or
// "Config.SessionManager.Cookie.Domain is … __Host- cookies may not have a
// Domain …".
//
// New sets the cookie attributes of Config.SessionManager that
// Config.Cookies requires, on a manager you pass too: see
// [Config.SessionManager].
func New(cfg Config) (*Smart, error) {
	engine, err := core.New(cfg.Config)
	if err != nil {
		return nil, err
	}
	opts, err := cfg.sessionOptions()
	if err != nil {
		return nil, err
	}
	log := engine.Config().Logger
	browser := sessions.New(cfg.SessionManager, append(opts, sessions.WithLogger(log))...)
	if err := checkCookie(&cfg, browser); err != nil {
		return nil, err
	}
	var storage core.Storage = browser.Storage()
	if cfg.Locker != nil {
		storage = browser.Storage().WithLocker(cfg.Locker)
	}
	s := &Smart{
		engine:        engine,
		browser:       browser,
		storage:       storage,
		log:           log,
		render:        cfg.RenderError,
		ehrLaunchOnly: cfg.EHRLaunchOnly,
		requireHandle: cfg.RequireHandle,
		hasLocker:     cfg.Locker != nil,
	}
	if s.render == nil {
		s.render = RenderError
	}
	if cfg.SessionManager == nil {
		browser.SessionManager().ErrorFunc = s.StoreError
	}
	s.launch = s.Sessions(http.HandlerFunc(s.serveLaunch))
	s.callback = s.Sessions(http.HandlerFunc(s.serveCallback))
	s.logout = s.Sessions(http.HandlerFunc(s.serveLogout))
	return s, nil
}

// MustNew is like [New] but panics, with New's message, if the Config is
// invalid. Like regexp.MustCompile, it is for a Config written in the
// program, where an error is the programmer's.
func MustNew(cfg Config) *Smart {
	s, err := New(cfg)
	if err != nil {
		panic(err.Error())
	}
	return s
}

// Engine returns the engine shared by the handlers, for direct use of
// [core.Session] outside HTTP handlers.
func (s *Smart) Engine() *core.Engine { return s.engine }

// Browser returns the browser session identity, with its session manager
// and Storage.
func (s *Smart) Browser() *sessions.Browser { return s.browser }

// Sessions is middleware that loads the browser session before next and
// saves it, with its cookie, before the response's first byte (the session
// manager's LoadAndSave). It does nothing when an outer handler of the same
// Smart has loaded the session already.
//
// When the session store fails, the request is answered by the manager's
// ErrorFunc ([Smart.StoreError] on a manager New made): 503, and nothing
// that next writes afterwards reaches the browser. An app that also wraps
// these routes in the manager's own LoadAndSave has the session saved
// twice per request; it is harmless, but wasted work.
func (s *Smart) Sessions(next http.Handler) http.Handler {
	// The browser's LoadAndSave marks the request (Browser.Loaded), so
	// nested handlers of this Smart see the session loaded.
	load := s.browser.LoadAndSave(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.inSession(r) {
			next.ServeHTTP(w, r)
			return
		}
		// The store is known for sure at the first request: the README's
		// one-line swap may come after New.
		s.warnOnce.Do(s.warnStore)
		g := guards.Get().(*storeGuard)
		g.ResponseWriter = w
		load.ServeHTTP(g, r)
		*g = storeGuard{}
		guards.Put(g)
	})
}

// guards recycles the storeGuard of each request: like the ResponseWriter
// it wraps, it is not used after the handler returns.
var guards = sync.Pool{New: func() any { return new(storeGuard) }}

// storeGuard is the writer under the session manager's. When the store
// fails to save the session, the manager answers through its ErrorFunc in
// place of the handler, before the handler's own status and body; once
// StoreError has answered, the guard drops those.
type storeGuard struct {
	http.ResponseWriter
	answered bool
}

func (g *storeGuard) WriteHeader(code int) {
	if !g.answered {
		g.ResponseWriter.WriteHeader(code)
	}
}

func (g *storeGuard) Write(b []byte) (int, error) {
	if g.answered {
		return 0, errAnswered
	}
	return g.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the writer underneath.
func (g *storeGuard) Unwrap() http.ResponseWriter { return g.ResponseWriter }

var errAnswered = errors.New("adapters: the response was already answered with the session store's failure")

func (s *Smart) inSession(r *http.Request) bool { return s.browser.Loaded(r.Context()) }

// Handler returns the whole SMART side of an app as one http.Handler, for
// apps without a router: GET /launch, GET /callback and POST /logout, and
// every other path served by app behind [Smart.RequireReady]. Mount it
// under a prefix with http.StripPrefix:
//
//	mux.Handle("/fhir/", http.StripPrefix("/fhir", s.Handler(app)))
func (s *Smart) Handler(app http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /launch", s.launch)
	mux.Handle("GET /callback", s.callback)
	mux.Handle("POST /logout", s.logout)
	mux.Handle("/", s.RequireReady(app))
	return mux
}
