package adapters

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/fhirware/smart/core"
)

// RequireReady is the ready middleware that requires a launch: it loads the
// request's launch (see [Smart.Ready]) and runs next with its
// *core.ReadyClient in the request context, where core.FromContext finds
// it. A request without a usable launch is answered with the error page:
// 401 when there is none or it has ended, 503 when the store fails.
func (s *Smart) RequireReady(next http.Handler) http.Handler {
	return s.Sessions(s.ready(next, true))
}

// LoadReady is the ready middleware that lets requests without a launch
// through: next runs with the ReadyClient in the request context when the
// request has a usable launch, and without one (core.FromContext returns
// nil) when it has none, or its launch has ended (the errors that
// RequireReady answers with 401). Other failures, such as a failing store,
// are still answered with the error page.
func (s *Smart) LoadReady(next http.Handler) http.Handler {
	return s.Sessions(s.ready(next, false))
}

func (s *Smart) ready(next http.Handler, require bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r, ok := s.Ready(w, r, require); ok {
			next.ServeHTTP(w, r)
		}
	})
}

// Ready is the step of the ready middleware, for routers whose middleware
// is not an http.Handler wrapper. It loads the launch named by the request's
// handle (the core.HandleParam query parameter, else the core.HandleHeader
// header) or, without one, the browser session's most recent launch, and
// returns r with the ReadyClient in its context and true.
//
// When the request has no usable launch, Ready with require false returns r
// unchanged and true; with require true it answers with the error page and
// returns false, as it does for every other failure. The request must be
// inside the browser session ([Smart.Sessions]); Ready panics otherwise.
func (s *Smart) Ready(w http.ResponseWriter, r *http.Request, require bool) (*http.Request, bool) {
	if !s.inSession(r) {
		panic("adapters: Smart.Ready called outside the browser session; wrap the handler with Smart.Sessions")
	}
	rc, err := s.readyClient(r)
	if err == nil {
		return r.WithContext(core.NewContext(r.Context(), rc)), true
	}
	if !require && noLaunch(err) {
		return r, true
	}
	s.Error(w, r, err)
	return nil, false
}

func (s *Smart) readyClient(r *http.Request) (*core.ReadyClient, error) {
	const op = "ready"
	ctx := r.Context()
	id, ok := s.browser.Existing(ctx)
	if !ok {
		return nil, &core.Error{Op: op, Code: core.CodeNoLaunch,
			Description: "this browser has no launch; launch the app from the EHR"}
	}
	handle := Handle(r)
	if handle == "" && s.requireHandle {
		return nil, &core.Error{Op: op, Code: core.CodeNoLaunch,
			Description: "the request carries no launch handle (" + core.HandleParam + " parameter or " + core.HandleHeader + " header)"}
	}
	if handle == "" {
		// The browser's own record of its latest launch, not the store's
		// list: a request still holding the session as it was before a
		// callback renewed its token never sees that callback's launch.
		if handle = s.browser.LatestHandle(ctx); handle == "" {
			return nil, &core.Error{Op: op, Code: core.CodeNoLaunch,
				Description: "this browser has no launch; launch the app from the EHR"}
		}
	}
	return s.engine.Session(id, s.storage).Ready(ctx, handle)
}

// noLaunch reports whether err means the request has no usable launch, as
// opposed to a failure.
func noLaunch(err error) bool {
	return errors.Is(err, core.CodeNoLaunch) || errors.Is(err, core.CodeLaunchExpired) ||
		errors.Is(err, core.CodeRefreshFailed)
}

// Handle returns the launch handle the request carries: its
// core.HandleParam query parameter, else its core.HandleHeader header, else
// "".
func Handle(r *http.Request) string {
	if h := queryValue(r.URL.RawQuery, core.HandleParam); h != "" {
		return h
	}
	return r.Header.Get(core.HandleHeader)
}

// queryValue returns the first value of the query parameter key, as
// url.Values.Get would, without parsing the whole query: this runs on every
// request of the app.
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
// absolute URL) with the launch handle of the request's ReadyClient added as
// the core.HandleParam query parameter, so that a link or a form keeps the
// browser on this launch in every tab. Without a ReadyClient in the
// request, or when ref is not a URL, ref is returned as it is.
func URL(r *http.Request, ref string) string {
	rc := core.FromContext(r.Context())
	if rc == nil {
		return ref
	}
	u, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	q := u.Query()
	q.Set(core.HandleParam, rc.Handle())
	u.RawQuery = q.Encode()
	return u.String()
}
