package adapters

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/sessions"
)

// HandleParam is the query parameter, and HandleHeader the request header,
// that carry a launch handle from the browser to the app. The callback
// sends the browser to Config.RedirectURL with the handle in HandleParam.
const (
	HandleParam  = "launch_handle"
	HandleHeader = "Smart-Launch-Handle"
)

// Config configures the SMART routes and middleware of an app. It holds the
// engine's [core.Config] and what the HTTP side adds: the browser session,
// its cookie, where the browser goes, and how errors are answered. Invalid
// settings are reported by [New], with the field's name.
type Config struct {
	// Config is the engine's configuration: client id, callback URL,
	// issuers, logger … See [core.Config] for each field and its default.
	// Its Logger also receives the adapters' logs. When its Storage is
	// nil, the SMART records are kept in SessionManager's store, so that
	// swapping the store (sm.Store = redisstore.New(pool)) swaps both.
	core.Config

	// Engine, when set, is an engine the app built once with core.New and
	// shares with its background code, with its discovery cache and key
	// sets; Config.Config must then be left empty (New refuses both). Its
	// records are in its own Config.Storage: give it
	// sessions.NewStorageFromManager(sm) to keep them with the sessions.
	Engine *core.Engine

	// SessionManager keeps the browser sessions. The default (nil) is a
	// manager made by sessions.New: scs's memstore, a cookie named
	// sessions.CookieName ("__Host-smart_session";
	// sessions.InsecureCookieName, "smart_session", in
	// sessions.CookieInsecureHTTP), HttpOnly, Secure, SameSite=Lax, Path
	// "/", no Domain, and session store failures answered with 503.
	//
	// Pass your own to share it with the app, for its own session data or
	// its store: the SMART side uses it as it is, except for the cookie
	// attributes that Cookies requires (see sessions.New), and, when the
	// app already wraps these routes in sm.LoadAndSave, it uses the
	// session that loaded: one load, one save and one Set-Cookie per
	// request. Answer its store failures as the SMART side does with
	//
	//	sm.ErrorFunc = sessions.StoreErrorFunc(logger)
	//
	// and swap its store with one line: sm.Store = redisstore.New(pool).
	SessionManager *scs.SessionManager

	// StoreTimeout bounds each operation on the session store on a
	// request's path: loading and saving the browser's session, renewing
	// it, every read, write and delete of a SMART record, and each call to
	// Config.Locker. A store that does not answer within it gives 503
	// storage_unavailable, and the next request tries it again. It reaches
	// the store through the context's deadline, which goredisstore honours
	// when its go-redis client's Options set ContextTimeoutEnabled; give
	// clients that take no context (redisstore, pgxstore) read and write
	// timeouts of their own. The default (0) is
	// sessions.DefaultStoreTimeout, 2 seconds; a negative value sets no
	// bound. A lock the Locker took too late is released within one more
	// second. It does not apply to an Engine you pass, nor to a session
	// loaded by the app's own sm.LoadAndSave.
	StoreTimeout time.Duration

	// Cookies chooses the session cookie's attributes, on a manager New
	// creates and on one you pass alike. The default,
	// sessions.CookieSecure, suits an app opened in its own window or tab;
	// sessions.CookieEmbeddedInEHR one the EHR shows in an iframe.
	Cookies sessions.CookieMode

	// RedirectURL is where the browser goes after a successful callback:
	// the app's first page, such as "/fhir/". The launch handle is added to
	// it as HandleParam. Required.
	RedirectURL string

	// LogoutURL is where POST /logout sends a browser (303 See Other) once
	// its launches are ended, such as "/" or the app's "signed out" page,
	// so that a plain HTML form lands somewhere. A request that asks for
	// JSON (Accept: application/json, which a script's fetch must set: its
	// default is */*) gets 204 No Content instead. The default (empty)
	// answers every logout with 204.
	LogoutURL string

	// EHRLaunchOnly refuses launches without a launch parameter with 400
	// invalid_request. The default is false: a launch request with iss
	// but without launch starts a standalone launch at that issuer. A
	// launch request without iss is always refused with 400.
	EHRLaunchOnly bool

	// RequireHandle makes the ready middleware refuse, with 401
	// no_launch, a request that carries no launch handle (neither the
	// HandleParam query parameter nor the HandleHeader header). The
	// default is false: such a request gets the browser's most recent
	// launch, so an app used in one tab needs no handle in its URLs.
	RequireHandle bool

	// RenderError writes the response for every failure that [Error]
	// answers, after it has been logged. The default is [RenderError]: an
	// HTML page, or JSON when the request's Accept asks for it.
	RenderError ErrorRenderer
}

// ErrorRenderer writes the response for a failed request. err is usually a
// *core.Error. A renderer must never write err's cause (err.Error()) into
// the response: it is for logs.
type ErrorRenderer func(w http.ResponseWriter, r *http.Request, err error)

// engine returns the engine of cfg: the one it names, or one built from
// its core.Config, over storage when that has none.
func (cfg *Config) engine(storage core.Storage, locker func(core.Locker) core.Locker) (*core.Engine, error) {
	if cfg.Engine != nil {
		if !reflect.ValueOf(cfg.Config).IsZero() {
			return nil, configError("Engine", "is set, and so is Config.Config: set one; the engine's configuration is the one it was built with")
		}
		return cfg.Engine, nil
	}
	c := cfg.Config
	if c.Storage == nil {
		c.Storage = storage
	}
	if c.Locker != nil {
		c.Locker = locker(c.Locker)
	}
	return core.New(c)
}

// check checks the fields the engine does not: Cookies, RedirectURL and
// LogoutURL.
func (cfg *Config) check() error {
	switch cfg.Cookies {
	case sessions.CookieSecure, sessions.CookieEmbeddedInEHR, sessions.CookieInsecureHTTP:
	default:
		return configError("Cookies", "is %d, not one of sessions.CookieSecure, CookieEmbeddedInEHR, CookieInsecureHTTP", int(cfg.Cookies))
	}
	if cfg.RedirectURL == "" {
		return configError("RedirectURL", "is empty; set the app page the browser lands on after the callback, such as \"/fhir/\"")
	}
	for field, v := range map[string]string{"RedirectURL": cfg.RedirectURL, "LogoutURL": cfg.LogoutURL} {
		if _, err := url.Parse(v); err != nil {
			return configError(field, "is not a URL: %v", err)
		}
	}
	return nil
}

// checkCookie reports the session manager's cookie settings that cannot
// work: those sessions.Browser.CheckCookie finds, and a Secure cookie on an
// app whose callback is plain http on another host than loopback.
func checkCookie(cfg *Config, engine *core.Engine, browser *sessions.Browser) error {
	if err := browser.CheckCookie(); err != nil {
		var ce *sessions.CookieError
		if errors.As(err, &ce) {
			return configError("SessionManager."+ce.Field, "%s", ce.Reason)
		}
		return err
	}
	sm := browser.SessionManager()
	callback := engine.Config().CallbackURL
	if callback == "" {
		// core.New accepts none, for an engine of Backend Services only;
		// the adapters serve launches.
		return configError("CallbackURL", "must be the absolute URL of the callback route, got %q", callback)
	}
	u, err := url.Parse(callback)
	if err != nil || u.Scheme != "http" || !sm.Cookie.Secure || loopback(u.Hostname()) {
		return nil
	}
	return configError("Cookies", "is %s, so the session cookie is Secure, but CallbackURL %q is plain http: "+
		"browsers would not send the cookie back; serve the app over https, or use sessions.CookieInsecureHTTP for local development",
		cfg.Cookies, callback)
}

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
