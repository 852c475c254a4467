package sessions

import (
	"log/slog"
	"strconv"
	"time"
)

// An Option changes how [New] sets up a [Browser]. Options are made by the
// functions of this package.
type Option interface {
	apply(*options)
}

type options struct {
	keyPrefix    string
	logger       *slog.Logger
	cookies      CookieMode
	storeTimeout time.Duration
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithKeyPrefix sets the prefix of the keys the Browser's Storage writes.
// The default is DefaultKeyPrefix, "smart:".
func WithKeyPrefix(prefix string) Option {
	return optionFunc(func(o *options) { o.keyPrefix = prefix })
}

// WithLogger sets the logger that StoreErrorFunc reports store failures to,
// when New creates the session manager. The default is slog.Default().
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(o *options) { o.logger = logger })
}

// WithStoreTimeout bounds each operation on the session store that the
// Browser makes on a request's path: loading and saving the browser's
// session in [Browser.LoadAndSave], renewing or destroying it, and every
// read, write and delete of its [Storage]. When the store does not answer
// within d, the request is answered 503 (storage_unavailable) instead of
// waiting, and the next request tries the store again. The default, also
// for d == 0, is DefaultStoreTimeout (2 seconds); d < 0 sets no bound.
//
// The bound reaches the store through the context's deadline: it holds for
// stores that honour the context (scs.CtxStore implementations, such as
// goredisstore over a go-redis client whose Options set
// ContextTimeoutEnabled). Stores that take no context (redisstore, and
// pgxstore at the version this module requires) wait as long as their
// client lets them: give those clients read and write timeouts of their
// own, no longer than d (see the examples' store.go).
func WithStoreTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.storeTimeout = d })
}

// CookieMode chooses the attributes of the browser session's cookie. Every
// mode makes it HttpOnly. New applies the mode to the session manager it is
// given as well as to one it creates.
type CookieMode int

// The cookie modes.
const (
	// CookieSecure, the default: Secure, SameSite=Lax, and a name with the
	// __Host- prefix (CookieName, "__Host-smart_session", on a manager New
	// creates; a name of your own gets the prefix added), which browsers
	// accept only from a secure origin, with Path "/" and no Domain. It
	// suits an app opened in its own window or tab, over https.
	CookieSecure CookieMode = iota
	// CookieEmbeddedInEHR, for an app that the EHR shows in an iframe on
	// its own site: SameSite=None, so the browser sends the cookie on
	// requests from inside the EHR's page; Secure, which SameSite=None
	// requires; Partitioned (CHIPS), so browsers that block third-party
	// cookies still keep it, apart for each EHR site that embeds the app;
	// and the __Host- prefix. The app must be served over https.
	CookieEmbeddedInEHR
	// CookieInsecureHTTP, for development on http://localhost or 127.0.0.1
	// only: SameSite=Lax without Secure, so browsers send the cookie over
	// plain http, and without the __Host- prefix, which browsers refuse
	// without Secure (a manager New creates names the cookie
	// InsecureCookieName, "smart_session"; CookieName is renamed so on a
	// manager you pass). Without Secure, anyone on the network path can
	// read the cookie and take over the session.
	CookieInsecureHTTP
)

// String returns the mode's name.
func (m CookieMode) String() string {
	switch m {
	case CookieSecure:
		return "CookieSecure"
	case CookieEmbeddedInEHR:
		return "CookieEmbeddedInEHR"
	case CookieInsecureHTTP:
		return "CookieInsecureHTTP"
	}
	return "CookieMode(" + strconv.Itoa(int(m)) + ")"
}

// WithCookies sets the cookie mode. The default is CookieSecure.
func WithCookies(m CookieMode) Option {
	return optionFunc(func(o *options) { o.cookies = m })
}
