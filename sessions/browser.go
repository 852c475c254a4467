package sessions

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/alexedwards/scs/v2"
)

// CookieName is the name of the session cookie when New creates the session
// manager.
const CookieName = "smart_session"

// sessionIDKey is where the SMART session id lives in the scs session. The
// prefix keeps it apart from the app's own session values.
const sessionIDKey = "smart:session_id"

// Browser ties each browser to its SMART session. The browser holds an scs
// session cookie; the scs session holds a random SMART session id; the
// engine keys the browser's pending launches and launch records by that id
// in the Browser's [Storage].
//
// A Browser is made once, with [New], and is safe for concurrent use. Its
// methods that take a context need the session loaded in it by
// [Browser.LoadAndSave] (or the manager's own LoadAndSave); like scs, they
// panic without it.
type Browser struct {
	sm      *scs.SessionManager
	storage *Storage
}

// New returns a Browser that keeps browser sessions with sm and SMART
// records in sm.Store, read at every call (see [NewStorageFromManager]).
//
// When sm is nil, New creates one with scs.New: the session data and the
// SMART records in memory (scs's memstore, which runs a cleanup goroutine
// for the life of the process), sessions that last 24 hours, and these
// cookie settings, changed only by the options: name CookieName
// ("smart_session"), HttpOnly, Secure, SameSite=Lax, Path "/". Its
// ErrorFunc is StoreErrorFunc, so a failing store answers 503.
//
// A manager you pass is used as it is, except for the cookie attributes
// that AllowInsecureHTTP and EmbeddedInEHR name. Give it the settings
// above: set Cookie.Secure (scs's default is false), keep Cookie.HttpOnly,
// choose a Cookie.Name that is not the app's other session cookie if it has
// one, and set ErrorFunc to StoreErrorFunc(logger).
//
// Swap the backend with one line, before or after New:
//
//	sm.Store = redisstore.New(pool)
func New(sm *scs.SessionManager, opts ...Option) *Browser {
	o := options{keyPrefix: DefaultKeyPrefix}
	for _, opt := range opts {
		opt.apply(&o)
	}
	if sm == nil {
		sm = scs.New()
		sm.Cookie.Name = CookieName
		sm.Cookie.HttpOnly = true
		sm.Cookie.Secure = true
		sm.Cookie.SameSite = http.SameSiteLaxMode
		sm.Cookie.Path = "/"
		sm.ErrorFunc = StoreErrorFunc(o.logger)
	}
	if o.insecureHTTP {
		sm.Cookie.Secure = false
	}
	if o.embedded {
		sm.Cookie.SameSite = http.SameSiteNoneMode
		sm.Cookie.Secure = true
		sm.Cookie.Partitioned = true
	}
	return &Browser{
		sm:      sm,
		storage: NewStorageFromManager(sm).WithPrefix(o.keyPrefix),
	}
}

// LoadAndSave is middleware that loads the browser's session before next
// runs and saves it, with its cookie, before the response's first byte. It
// is the manager's own LoadAndSave; an app that already wraps its routes
// with that needs nothing more.
func (b *Browser) LoadAndSave(next http.Handler) http.Handler {
	return b.sm.LoadAndSave(next)
}

// ID returns the SMART session id of the browser making the request,
// creating one if the session has none: 256 bits from crypto/rand, base64url
// encoded. A new id is saved with the session when the response is written.
// Use it to start a launch.
func (b *Browser) ID(ctx context.Context) (string, error) {
	if id, ok := b.Existing(ctx); ok {
		return id, nil
	}
	var buf [32]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", fmt.Errorf("sessions: making a session id: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(buf[:])
	b.sm.Put(ctx, sessionIDKey, id)
	return id, nil
}

// Existing returns the SMART session id of the browser making the request,
// and false when it has none. Use it on the callback and on app routes,
// where a browser without an id has no launch to find.
func (b *Browser) Existing(ctx context.Context) (string, bool) {
	id := b.sm.GetString(ctx, sessionIDKey)
	return id, id != ""
}

// Renew gives the browser a new session token, keeping the session's values
// and so its SMART session id, and deletes the old token from the store.
// Call it after a successful callback: a token planted in the browser
// before the launch (session fixation) no longer names the session. The new
// cookie goes out with the response. A failing store gives a
// storage_unavailable *core.Error.
func (b *Browser) Renew(ctx context.Context) error {
	if err := b.sm.RenewToken(ctx); err != nil {
		return storageError("renew the session token", err)
	}
	return nil
}

// Destroy ends the browser's session: its data, and so its SMART session id,
// is deleted from the store and the cookie is cleared with the response.
// The SMART records of the session are not deleted; they are unreachable
// and run out with their time-to-live. A failing store gives a
// storage_unavailable *core.Error.
func (b *Browser) Destroy(ctx context.Context) error {
	if err := b.sm.Destroy(ctx); err != nil {
		return storageError("destroy the session", err)
	}
	return nil
}

// Storage returns the Storage for the engine: SMART records in the
// manager's current store, under the Browser's key prefix.
func (b *Browser) Storage() *Storage { return b.storage }

// SessionManager returns the scs session manager, for the one-line store
// swap or the app's own session values.
func (b *Browser) SessionManager() *scs.SessionManager { return b.sm }

// StoreErrorFunc returns an scs ErrorFunc for a session manager's
// LoadAndSave: it logs the error to logger (slog.Default() when nil) and
// answers 503 Service Unavailable, with no detail of the failure in the
// body. LoadAndSave calls it when the store fails to load or save a
// session. New installs it on the manager it creates; install it on your
// own with
//
//	sm.ErrorFunc = sessions.StoreErrorFunc(logger)
func StoreErrorFunc(logger *slog.Logger) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		l := logger
		if l == nil {
			l = slog.Default()
		}
		l.LogAttrs(r.Context(), slog.LevelError, "sessions: session store failed",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("error", err.Error()))
		h := w.Header()
		h.Del("Location")
		h.Set("Cache-Control", "no-store")
		http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
	}
}
