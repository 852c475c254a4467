package adapters

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/sessions"
)

// Config configures the SMART routes and middleware of an app. It holds the
// engine's [core.Config] and what the HTTP side adds: the browser session,
// its cookie, how errors are answered and where the launch handle comes
// from. Invalid settings are reported by [New], with the field's name.
type Config struct {
	// Config is the engine's configuration: client id, callback and
	// redirect URLs, issuers, logger … See [core.Config] for each field
	// and its default. Its Logger also receives the adapters' logs.
	core.Config

	// SessionManager keeps the browser sessions, and its Store the SMART
	// records. The default (nil) is a manager made by sessions.New: scs's
	// memstore, a cookie named sessions.CookieName
	// ("__Host-smart_session"; sessions.InsecureCookieName,
	// "smart_session", with CookieInsecureHTTP), HttpOnly, Secure,
	// SameSite=Lax, Path "/", no Domain, and session store failures
	// answered through the adapter's error page (503).
	//
	// A manager you pass is used as it is, except for the cookie
	// attributes that New sets on it, by the Cookies mode:
	// Cookie.HttpOnly true in every mode; Cookie.Secure true, and the
	// prefix "__Host-" added to Cookie.Name when it lacks it, in
	// CookieSecure and CookieEmbeddedInEHR; Cookie.Secure false, and a
	// Cookie.Name of sessions.CookieName renamed
	// sessions.InsecureCookieName, in CookieInsecureHTTP; Cookie.SameSite
	// None and Cookie.Partitioned in CookieEmbeddedInEHR (see
	// sessions.New); and HashTokenInStore true in every mode, so the store
	// keeps sessions under a hash of their token (sessions stored before
	// under plain tokens are no longer found). In CookieSecure and
	// CookieEmbeddedInEHR, New refuses a manager whose Cookie.Domain is
	// set or whose Cookie.Path is not "/", which a __Host- cookie may not
	// have; in CookieInsecureHTTP, one whose Cookie.Name has the __Host-
	// or __Secure- prefix (see sessions.Browser.CheckCookie). Set its
	// ErrorFunc to [Smart.StoreError] to answer store failures the same
	// way. Swap the store with one line: sm.Store = redisstore.New(pool).
	SessionManager *scs.SessionManager

	// Locker is a lock shared by every instance of the app, held around
	// each token refresh and each change to a browser's list of launches,
	// so that instances behind a load balancer refresh a launch once and
	// never lose a rotated refresh token. Use the locker of the server that
	// holds SessionManager.Store: sessions/goredislock, sessions/redislock
	// or sessions/pgxlock. The default (nil) is no lock: refreshes are
	// single-flight within each instance, which is all one instance needs.
	Locker core.Locker

	// StoreTimeout bounds each operation on the session store on a
	// request's path: loading and saving the browser's session, renewing
	// it, and every read, write and delete of a SMART record. A store that
	// does not answer within it gives 503 storage_unavailable, and the
	// next request tries it again. It reaches the store through the
	// context's deadline, which goredisstore honours when its go-redis
	// client's Options set ContextTimeoutEnabled; give clients that take
	// no context (redisstore, pgxstore) read and write timeouts of their
	// own. The default (0) is sessions.DefaultStoreTimeout, 2 seconds; a
	// negative value sets no bound. See sessions.WithStoreTimeout.
	StoreTimeout time.Duration

	// Cookies chooses the session cookie's attributes, on a manager New
	// creates and on one you pass as SessionManager alike. The default,
	// CookieSecure, suits an app opened in its own window or tab.
	Cookies CookieMode

	// EHRLaunchOnly refuses launches without a launch parameter with 400
	// invalid_request. The default is false: a launch request with iss
	// but without launch starts a standalone launch at that issuer. A
	// launch request without iss is always refused with 400.
	EHRLaunchOnly bool

	// RequireHandle makes the ready middleware refuse, with 401
	// no_launch, a request that carries no launch handle (neither the
	// core.HandleParam query parameter nor the core.HandleHeader header).
	// The default is false: such a request gets the browser session's most
	// recent launch, so an app used in one tab needs no handle in its URLs.
	RequireHandle bool

	// RenderError writes the response for every failure of the launch,
	// callback, logout and ready handlers, after the adapter has logged
	// it. Its status should be core.HTTPStatus(err). The default is
	// [RenderError]: an HTML page, or JSON when the request's Accept asks
	// for it.
	RenderError ErrorRenderer
}

// CookieMode chooses the attributes of the browser session's cookie. Every
// mode makes it HttpOnly, on the manager New creates and on one you pass.
type CookieMode int

// The cookie modes.
const (
	// CookieSecure: Secure, SameSite=Lax, and a name with the __Host-
	// prefix (sessions.CookieName, "__Host-smart_session", on a manager
	// New creates), so that no site on a sibling subdomain can plant the
	// cookie. It works for apps launched in a new window or tab, and is
	// the default.
	CookieSecure CookieMode = iota
	// CookieEmbeddedInEHR: SameSite=None, Secure, Partitioned and the
	// __Host- prefix, for apps the EHR shows in an iframe on its own site.
	// The app must be served over https. See sessions.EmbeddedInEHR.
	CookieEmbeddedInEHR
	// CookieInsecureHTTP: SameSite=Lax without Secure, so the cookie
	// travels over plain http, and without the __Host- prefix, which
	// browsers refuse without Secure (sessions.InsecureCookieName,
	// "smart_session", on a manager New creates). It is for development
	// on localhost only: anyone on the network path can read the cookie
	// and take over the session. See sessions.AllowInsecureHTTP.
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
	return "CookieMode(invalid)"
}

// ErrorRenderer writes the response for a failed request. err is usually a
// *core.Error; its status is core.HTTPStatus(err). A renderer must never
// write err's cause (err.Error()) into the response: it is for logs.
type ErrorRenderer func(w http.ResponseWriter, r *http.Request, err error)

// sessionOptions returns the sessions options for the cookie mode and the
// store timeout.
func (cfg *Config) sessionOptions() ([]sessions.Option, error) {
	timeout := sessions.WithStoreTimeout(cfg.StoreTimeout)
	switch cfg.Cookies {
	case CookieSecure:
		return []sessions.Option{timeout}, nil
	case CookieEmbeddedInEHR:
		return []sessions.Option{timeout, sessions.EmbeddedInEHR()}, nil
	case CookieInsecureHTTP:
		return []sessions.Option{timeout, sessions.AllowInsecureHTTP()}, nil
	}
	return nil, configError("Cookies", "is %d, not one of CookieSecure, CookieEmbeddedInEHR, CookieInsecureHTTP", int(cfg.Cookies))
}

// checkCookie reports settings under which the browser would never send
// the session cookie back, or another site could plant one.
func checkCookie(cfg *Config, browser *sessions.Browser) error {
	if err := browser.CheckCookie(); err != nil {
		var ce *sessions.CookieError
		if errors.As(err, &ce) {
			return configError("SessionManager."+ce.Field, "%s", ce.Reason)
		}
		return err
	}
	sm := browser.SessionManager()
	u, err := url.Parse(cfg.CallbackURL)
	if err != nil || u.Scheme != "http" || !sm.Cookie.Secure || loopback(u.Hostname()) {
		return nil
	}
	return configError("Cookies", "is %s, so the session cookie is Secure, but CallbackURL %q is plain http: "+
		"browsers would not send the cookie back; serve the app over https, or use CookieInsecureHTTP for local development",
		cfg.Cookies, cfg.CallbackURL)
}

// loopback reports whether host is localhost or a loopback address, where
// browsers send Secure cookies over plain http.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func configError(field, format string, args ...any) error {
	return &core.Error{Op: "config", Code: core.CodeInvalidConfig, Description: "Config." + field + " " + fmt.Sprintf(format, args...)}
}
