package sessions

import "log/slog"

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

// AllowInsecureHTTP leaves the Secure attribute off the session cookie, so
// that browsers send it over plain http. It is for development on
// http://localhost or 127.0.0.1 only: without Secure, anyone on the network
// path can read the cookie and take over the session. It has no effect
// together with EmbeddedInEHR, which needs Secure. The default is off: the
// cookie is Secure.
//
// New applies it to the session manager it is given as well as to one it
// creates.
func AllowInsecureHTTP() Option {
	return optionFunc(func(o *options) { o.insecureHTTP = true })
}

// EmbeddedInEHR sets the session cookie up for an app that the EHR shows in
// an iframe on its own site: SameSite=None, so the browser sends the cookie
// on requests from inside the EHR's page; Secure, which SameSite=None
// requires; and Partitioned (CHIPS), so browsers that block third-party
// cookies still keep it, apart for each EHR site that embeds the app. The
// app must then be served over https. The default is off: SameSite=Lax,
// which works for launches in a new window or tab.
//
// New applies it to the session manager it is given as well as to one it
// creates.
func EmbeddedInEHR() Option {
	return optionFunc(func(o *options) { o.embedded = true })
}
