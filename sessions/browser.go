package sessions

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/fhirware/smart/core"
)

// CookieName is the name of the session cookie of a manager New creates,
// in the secure modes: CookieSecure and CookieEmbeddedInEHR. Its __Host- prefix
// makes browsers take the cookie only when it is Secure, has Path "/" and
// no Domain, and was set by the app's own host over https: a site on a
// sibling subdomain cannot plant a session cookie that the app would read
// (cookie tossing).
const CookieName = "__Host-smart_session"

// InsecureCookieName is the name of the session cookie of a manager New
// creates in CookieInsecureHTTP. It has no __Host- prefix, which browsers
// refuse on a cookie that is not Secure.
const InsecureCookieName = "smart_session"

// hostPrefix is the cookie name prefix that binds a cookie to the host
// that set it (RFC 6265bis, section 4.1.3.2).
const hostPrefix = "__Host-"

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
	secure  bool          // the cookie must be Secure, with the __Host- prefix
	timeout time.Duration // bounds each store operation; 0 is none
}

// New returns a Browser that keeps browser sessions with sm and SMART
// records in sm.Store, read at every call (see [NewStorageFromManager]).
//
// When sm is nil, New creates one with scs.New: the session data and the
// SMART records in memory (scs's memstore, which runs a cleanup goroutine
// for the life of the process), sessions that last 24 hours, and these
// cookie settings, changed only by the options: name CookieName
// ("__Host-smart_session"; InsecureCookieName, "smart_session", with
// CookieInsecureHTTP), HttpOnly, Secure, SameSite=Lax, Path "/", no Domain.
// Its ErrorFunc is StoreErrorFunc, so a failing store answers 503, and its
// Codec is [Codec], which encodes sessions of string values without gob
// and falls back to scs's gob codec for the app's values of other types.
//
// Every store operation of the Browser on a request's path is bounded by
// the store timeout, DefaultStoreTimeout (2 seconds) unless
// WithStoreTimeout sets another.
//
// A manager you pass is used as it is, with its own Codec (scs's gob
// unless you set another, such as [Codec]), except for these cookie
// attributes, which New sets on it:
//
//   - Cookie.HttpOnly: true, always.
//   - Cookie.Secure: true, but false in CookieInsecureHTTP.
//   - Cookie.Name: the prefix "__Host-" is added when the name lacks it,
//     unless in CookieInsecureHTTP ("session", scs's default,
//     becomes "__Host-session"). In CookieInsecureHTTP, CookieName
//     becomes InsecureCookieName, so that a manager New made can be
//     passed to New again; other names are kept.
//   - Cookie.SameSite and Cookie.Partitioned: SameSite=None and
//     Partitioned in CookieEmbeddedInEHR.
//   - HashTokenInStore: true, always, so the store keeps each session
//     under a hash of its token: whoever can read the store (a replica, a
//     backup) finds no cookie value to present. Sessions stored before
//     under plain tokens are no longer found.
//
// A __Host- cookie must also have Path "/" and no Domain, or browsers
// drop it: New leaves Cookie.Path and Cookie.Domain as they are, and
// [Browser.CheckCookie] reports them; call it after New (adapters.New
// does). Set ErrorFunc to StoreErrorFunc(logger) yourself, and choose a
// Cookie.Name that is not the app's other session cookie if it has one.
//
// Swap the backend with one line, before or after New:
//
//	sm.Store = redisstore.New(pool)
func New(sm *scs.SessionManager, opts ...Option) *Browser {
	o := options{keyPrefix: DefaultKeyPrefix}
	for _, opt := range opts {
		opt.apply(&o)
	}
	secure := o.cookies != CookieInsecureHTTP
	if sm == nil {
		sm = scs.New()
		sm.Cookie.Name = InsecureCookieName
		sm.Cookie.SameSite = http.SameSiteLaxMode
		sm.Cookie.Path = "/"
		sm.Cookie.Domain = ""
		sm.ErrorFunc = StoreErrorFunc(o.logger)
		sm.Codec = Codec{}
	}
	sm.Cookie.HttpOnly = true
	sm.Cookie.Secure = secure
	sm.HashTokenInStore = true
	switch {
	case secure && !hasPrefix(sm.Cookie.Name, hostPrefix):
		sm.Cookie.Name = hostPrefix + sm.Cookie.Name
	case !secure && sm.Cookie.Name == CookieName:
		// A manager New made in a secure mode, passed again.
		sm.Cookie.Name = InsecureCookieName
	}
	if o.cookies == CookieEmbeddedInEHR {
		sm.Cookie.SameSite = http.SameSiteNoneMode
		sm.Cookie.Partitioned = true
	}
	switch {
	case o.storeTimeout == 0:
		o.storeTimeout = DefaultStoreTimeout
	case o.storeTimeout < 0:
		o.storeTimeout = 0
	}
	return &Browser{
		sm:      sm,
		storage: NewStorageFromManager(sm).WithPrefix(o.keyPrefix).WithTimeout(o.storeTimeout),
		secure:  secure,
		timeout: o.storeTimeout,
	}
}

// hasPrefix reports whether a cookie name starts with prefix, which
// browsers match regardless of case.
func hasPrefix(name, prefix string) bool {
	return len(name) >= len(prefix) && strings.EqualFold(name[:len(prefix)], prefix)
}

// A CookieError reports a setting of the session manager's cookie under
// which browsers would drop the cookie, or which would let another site
// plant one. [Browser.CheckCookie] returns it.
type CookieError struct {
	// Field is the scs.SessionManager field at fault, such as
	// "Cookie.Domain".
	Field string
	// Reason says what is wrong with it and what to do, in a sentence
	// that follows the field's name.
	Reason string
}

// Error returns the field and the reason, after the package's prefix.
func (e *CookieError) Error() string {
	return "sessions: the session manager's " + e.Field + " " + e.Reason
}

// CheckCookie reports, as a *CookieError, a setting of the session
// manager's cookie that the Browser cannot use:
//
//   - in the secure modes (CookieSecure, CookieEmbeddedInEHR): a Cookie.Domain, a Cookie.Path other than "/", a
//     Cookie.Name without the __Host- prefix or Cookie.Secure off. Browsers
//     drop a __Host- cookie with a Domain or another Path, and without the
//     prefix a site on a sibling subdomain could plant a session cookie
//     that the app reads (cookie tossing).
//   - in CookieInsecureHTTP: a Cookie.Name with the __Host- or
//     __Secure- prefix, which browsers drop on a cookie that is not Secure.
//   - in every mode: Cookie.HttpOnly off.
//
// New sets what it can (see [New]) but returns no error, so call
// CheckCookie after New, and after changing the manager's Cookie.
// adapters.New calls it, and refuses the Config when it fails.
func (b *Browser) CheckCookie() error {
	c := b.sm.Cookie
	fail := func(field, format string, args ...any) error {
		return &CookieError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case !c.HttpOnly:
		return fail("Cookie.HttpOnly", "is false: the session cookie must be HttpOnly, out of reach of the page's scripts")
	case b.secure && !c.Secure:
		return fail("Cookie.Secure", "is false: the session cookie must be Secure; use CookieInsecureHTTP for development over plain http")
	case b.secure && !hasPrefix(c.Name, hostPrefix):
		return fail("Cookie.Name", "is %q: the session cookie's name must start with %s, so that no other site can plant it", c.Name, hostPrefix)
	case b.secure && c.Domain != "":
		return fail("Cookie.Domain", "is %q: __Host- cookies may not have a Domain, and browsers would drop the session cookie; "+
			"leave it empty, so that the cookie belongs to the app's host alone and no sibling subdomain can plant one", c.Domain)
	case b.secure && c.Path != "/":
		return fail("Cookie.Path", "is %q: __Host- cookies must have Path \"/\", and browsers would drop the session cookie; set it to \"/\"", c.Path)
	case !c.Secure && (hasPrefix(c.Name, hostPrefix) || hasPrefix(c.Name, "__Secure-")):
		return fail("Cookie.Name", "is %q, but the session cookie is not Secure (CookieInsecureHTTP): browsers drop a cookie with that prefix unless it is Secure; "+
			"name it without the prefix, such as %q", c.Name, InsecureCookieName)
	}
	return nil
}

// LoadAndSave is middleware that loads the browser's session before next
// runs and saves it, with its cookie, before the response's first byte. It
// is the manager's own LoadAndSave, with the loading and the saving each
// bounded by the store timeout ([WithStoreTimeout]; 2 seconds by default):
// the request's context carries that deadline only while scs talks to the
// store, and a store that outlives it cancels the request, which the
// manager's ErrorFunc answers (503 with StoreErrorFunc). An app that wraps
// its routes with the manager's own LoadAndSave instead needs nothing
// more, but its session loads and saves are bounded only by its store
// client's timeouts.
func (b *Browser) LoadAndSave(next http.Handler) http.Handler {
	return b.boundedLoadAndSave(next)
}

// LaunchID returns the SMART session id to start a launch with: the
// browser's own, or, when its session has none, a fresh one (256 bits from
// crypto/rand, base64url encoded) with fresh true. A fresh id is not put in
// the session: the session, and so the store and the cookie, stay as they
// were unless [Browser.Launched] follows. Call Launched once the engine's
// Launch has succeeded; after a failed launch, call nothing.
func (b *Browser) LaunchID(ctx context.Context) (id string, fresh bool, err error) {
	if id, ok := b.ID(ctx); ok {
		return id, false, nil
	}
	var buf [32]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", false, fmt.Errorf("sessions: making a session id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(buf[:]), true, nil
}

// Launched records a launch that succeeded under id, which came from
// [Browser.LaunchID], and whose pending launch lives pendingTTL
// (the engine's Config.PendingLaunchTTL):
//
//   - a session without an id gets id;
//   - a session that this request created, with no values of the app's
//     own, lives pendingTTL from now, not the manager's whole Lifetime:
//     a browser that never comes back from the EHR leaves nothing behind
//     for long. [Browser.Renew], after the callback, gives it the whole
//     Lifetime;
//   - any other session lives at least pendingTTL from now: a session
//     whose deadline is later, such as one with a finished launch, keeps
//     it.
//
// The session, with its cookie, is saved when the response is written.
func (b *Browser) Launched(ctx context.Context, id string, pendingTTL time.Duration) {
	until := time.Now().Add(pendingTTL)
	if !b.sm.Exists(ctx, sessionIDKey) {
		created := b.sm.Token(ctx) == "" && len(b.sm.Keys(ctx)) == 0
		b.sm.Put(ctx, sessionIDKey, id)
		if created {
			b.sm.SetDeadline(ctx, until)
			return
		}
	}
	if b.sm.Deadline(ctx).Before(until) {
		b.sm.SetDeadline(ctx, until)
	}
}

// ID returns the SMART session id of the browser making the request, and
// false when it has none. Use it on the callback and on app routes, where a
// browser without an id has no launch to find; a launch gets its id from
// [Browser.LaunchID].
func (b *Browser) ID(ctx context.Context) (string, bool) {
	id := b.sm.GetString(ctx, sessionIDKey)
	return id, id != ""
}

// latestHandleKey is where the browser's session keeps the handle of the
// launch the browser finished last.
const latestHandleKey = "smart:latest_handle"

// SetLatestHandle records handle as the launch the browser finished last, in the
// browser's own session (saved with the response). Call it after a
// successful callback, once the token is renewed (the adapters do).
func (b *Browser) SetLatestHandle(ctx context.Context, handle string) {
	b.sm.Put(ctx, latestHandleKey, handle)
}

// LatestHandle returns the handle of the launch the browser finished last, as
// the session the request carries knows it, or "". A request that loaded
// the session under a token the callback has since renewed (a token
// planted in the browser, say) holds the session as it was before the
// callback, so it never learns the new launch.
func (b *Browser) LatestHandle(ctx context.Context) string {
	return b.sm.GetString(ctx, latestHandleKey)
}

// Renew gives the browser a new session token, keeping the session's values
// and so its SMART session id, and deletes the old token from the store.
// The session then lives the manager's whole Lifetime from now, also when
// [Browser.Launched] had given it the pending launch's short one.
// A callback should renew with [Browser.RenewAfterCallback] from
// core.CallbackRequest.BeforeStore, before the launch is stored, so that a
// token planted in the browser (session fixation) never names a session
// holding the launch. The new cookie goes out with the response. A failing store gives a
// storage_unavailable *core.Error.
func (b *Browser) Renew(ctx context.Context) error {
	bctx, cancel := b.bound(ctx)
	defer cancel()
	// RenewToken also gives the session the manager's whole Lifetime.
	if err := b.sm.RenewToken(bctx); err != nil {
		return storageError("renew the session token", err)
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
// answers 503 with the code the SMART routes give a failing store,
// storage_unavailable: as JSON {"error", "error_description"} when the
// request's Accept asks for JSON, as text otherwise, with no detail of the
// failure. LoadAndSave calls it when the store fails to load or save a
// session. New installs it on the manager it creates; install it on your
// own, before or after the adapters are built, with
//
//	sm.ErrorFunc = sessions.StoreErrorFunc(logger)
func StoreErrorFunc(logger *slog.Logger) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		l := logger
		if l == nil {
			l = slog.Default()
		}
		l.LogAttrs(r.Context(), slog.LevelError, "sessions: session store failed",
			slog.String("code", string(core.CodeStorageUnavailable)),
			slog.String("method", r.Method),
			slog.String("route", routeOf(r)),
			slog.String("error", err.Error()))
		h := w.Header()
		h.Del("Location")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		const desc = "the session store is not available; try again later"
		if strings.Contains(r.Header.Get("Accept"), "json") {
			h.Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, `{"error":%q,"error_description":%q}`+"\n", string(core.CodeStorageUnavailable), desc)
			return
		}
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "The session store is not available; try again later.\nError code: %s\n", string(core.CodeStorageUnavailable))
	}
}

// routeOf names a request's route for a log line: the pattern the router
// matched (net/http's ServeMux and chi set Request.Pattern; echoware and
// ginware set it from their router's), never the path, which may hold a
// patient's id. It is "unmatched" when no router set one.
func routeOf(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	return "unmatched"
}
