package sessions

import (
	"log/slog"
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
	insecureHTTP bool
	embedded     bool
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

// AllowInsecureHTTP leaves the Secure attribute off the session cookie, so
// that browsers send it over plain http, and with it the __Host- prefix,
// which browsers refuse without Secure: a manager New creates names the
// cookie InsecureCookieName ("smart_session"). It is for development on
// http://localhost or 127.0.0.1 only: without Secure, anyone on the network
// path can read the cookie and take over the session, and a site on a
// sibling subdomain can plant one. It has no effect together with
// EmbeddedInEHR, which needs Secure. The default is off: the cookie is
// Secure, named with the __Host- prefix.
//
// New applies it to the session manager it is given as well as to one it
// creates: it turns Cookie.Secure off, and leaves Cookie.Name as it is
// unless it is CookieName, which becomes InsecureCookieName.
func AllowInsecureHTTP() Option {
	return optionFunc(func(o *options) { o.insecureHTTP = true })
}

// EmbeddedInEHR sets the session cookie up for an app that the EHR shows in
// an iframe on its own site: SameSite=None, so the browser sends the cookie
// on requests from inside the EHR's page; Secure, which SameSite=None
// requires; and Partitioned (CHIPS), so browsers that block third-party
// cookies still keep it, apart for each EHR site that embeds the app. The
// app must then be served over https. Like the default mode, it names the
// cookie with the __Host- prefix. The default is off: SameSite=Lax, which
// works for launches in a new window or tab.
//
// New applies it to the session manager it is given as well as to one it
// creates: it sets Cookie.SameSite, Cookie.Secure, Cookie.Partitioned and
// Cookie.HttpOnly, and adds the __Host- prefix to Cookie.Name.
func EmbeddedInEHR() Option {
	return optionFunc(func(o *options) { o.embedded = true })
}
