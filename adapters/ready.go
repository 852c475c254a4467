package adapters

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/fhirware/smart/core"
)

// RequireReady is the ready middleware that requires a launch: it loads
// the launch named by the request's handle (the HandleParam query
// parameter, else the HandleHeader header) or, without one, the browser's
// most recent launch, and runs next with its *core.ReadyClient in the
// request context, where [FromContext] finds it. A request without a
// usable launch is answered with the error page: 401 when there is none or
// it has ended, 503 when the store fails.
func (a *App) RequireReady(next http.Handler) http.Handler {
	return a.readySessions(a.readyHandler(next, true))
}

// LoadReady is the ready middleware that lets requests without a launch
// through: next runs with the ReadyClient in the request context when the
// request has a usable launch, and without one ([FromContext] returns nil,
// and [LoadError] says why) when it has none, or its launch has ended (the
// errors that RequireReady answers with 401). Other failures, such as a
// failing store, are still answered with the error page.
func (a *App) LoadReady(next http.Handler) http.Handler {
	return a.readySessions(a.readyHandler(next, false))
}

func (a *App) readyHandler(next http.Handler, require bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r, ok := a.ready(w, r, require); ok {
			next.ServeHTTP(w, r)
		}
	})
}

// ready is the step of the ready middleware, for a request inside the
// browser session: it returns the request with the ReadyClient (or, with
// require false and no usable launch, the load error) in its context and
// true, or answers the request and returns false.
func (a *App) ready(w http.ResponseWriter, r *http.Request, require bool) (*http.Request, bool) {
	if !a.browser.Loaded(r.Context()) {
		a.Error(w, r, &core.Error{Op: "ready", Code: core.CodeStorageUnavailable,
			Description: "the browser session is not loaded", Err: errors.New("adapters: the ready step ran outside the App's Sessions middleware")})
		return nil, false
	}
	rc, err := a.readyClient(r)
	if err == nil {
		return r.WithContext(context.WithValue(r.Context(), readyKey{}, &readyValue{app: a, rc: rc})), true
	}
	if !require && noLaunch(err) {
		return r.WithContext(context.WithValue(r.Context(), readyKey{}, &readyValue{app: a, err: err})), true
	}
	a.Error(w, r, err)
	return nil, false
}

// readyKey is the context key of a request's readyValue.
type readyKey struct{}

// readyValue is what the ready middleware leaves in a request's context.
type readyValue struct {
	app *App
	rc  *core.ReadyClient
	err error // why there is no rc, under LoadReady
}

// FromContext returns the ReadyClient that the ready middleware put in
// ctx, or nil when there is none (outside the middleware, or under
// LoadReady for a request without a usable launch).
func FromContext(ctx context.Context) *core.ReadyClient {
	if v, _ := ctx.Value(readyKey{}).(*readyValue); v != nil {
		return v.rc
	}
	return nil
}

// LoadError returns why the ready middleware put no ReadyClient in ctx:
// under [App.LoadReady], a *core.Error with Code core.CodeNoLaunch,
// CodeLaunchExpired or CodeRefreshFailed; nil when it put one, or when ctx
// did not pass through the middleware.
func LoadError(ctx context.Context) error {
	if v, _ := ctx.Value(readyKey{}).(*readyValue); v != nil {
		return v.err
	}
	return nil
}

func (a *App) readyClient(r *http.Request) (*core.ReadyClient, error) {
	const op = "ready"
	ctx := r.Context()
	id, ok := a.browser.ID(ctx)
	if !ok {
		return nil, &core.Error{Op: op, Code: core.CodeNoLaunch, Description: "this browser has no launch"}
	}
	handle := Handle(r)
	if handle == "" && a.requireHandle {
		return nil, &core.Error{Op: op, Code: core.CodeNoLaunch,
			Description: "the request carries no launch handle (" + HandleParam + " parameter or " + HandleHeader + " header)"}
	}
	if handle != "" {
		return a.engine.Ready(ctx, id, handle)
	}
	if handle = a.browser.LatestHandle(ctx); handle == "" {
		return nil, &core.Error{Op: op, Code: core.CodeNoLaunch, Description: "this browser has no launch"}
	}
	rc, err := a.engine.Ready(ctx, id, handle)
	if err == nil {
		a.remember(r, handle) // read it ahead next time (see latest.go)
	}
	return rc, err
}

// noLaunch reports whether err means the request has no usable launch, as
// opposed to a failure (of the store, of the EHR).
func noLaunch(err error) bool {
	return errors.Is(err, core.CodeNoLaunch) || errors.Is(err, core.CodeLaunchExpired) ||
		errors.Is(err, core.CodeRefreshFailed)
}

// Handle returns the launch handle the request carries: its HandleParam
// query parameter, else its HandleHeader header, else "".
func Handle(r *http.Request) string {
	if h := queryValue(r.URL.RawQuery, HandleParam); h != "" {
		return h
	}
	return r.Header.Get(HandleHeader)
}

// queryValue returns the first value of key in rawQuery without parsing the
// whole query into a map, as r.URL.Query() would on every request.
func queryValue(rawQuery, key string) string {
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k != key {
			if uk, err := url.QueryUnescape(k); err != nil || uk != key {
				continue
			}
		}
		if uv, err := url.QueryUnescape(v); err == nil {
			return uv
		}
	}
	return ""
}

// URL returns the app URL ref (a path such as "/fhir/api/patient", or an
// absolute URL) with the launch handle of the request's ReadyClient added
// as the HandleParam query parameter, so that a link or a form keeps the
// browser on this launch in every tab. Without a ReadyClient in the
// request, or when ref is not a URL, ref is returned as it is.
func URL(r *http.Request, ref string) string {
	rc := FromContext(r.Context())
	if rc == nil {
		return ref
	}
	return withHandle(ref, rc.Handle())
}

// withHandle adds handle to ref as HandleParam, or returns ref as it is
// when it is not a URL.
func withHandle(ref, handle string) string {
	u, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	q := u.Query()
	q.Set(HandleParam, handle)
	u.RawQuery = q.Encode()
	return u.String()
}
