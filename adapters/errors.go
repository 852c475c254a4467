package adapters

import (
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/fhir"
)

// Error answers a failed request: it logs err, with its cause (at level
// Error for a 5xx status, Info otherwise; without the query, which may hold
// a code), and writes the response with Config.RenderError, or
// [RenderError] by default. Call it from a handler behind the ready
// middleware, which leaves the App in the request context; elsewhere it
// logs to slog's default logger and renders with RenderError. Every handler
// and middleware of the App answers its failures the same way. Errors from
// core never hold a token, so neither does the log line.
func Error(w http.ResponseWriter, r *http.Request, err error) {
	if v, _ := r.Context().Value(readyKey{}).(*readyValue); v != nil {
		v.app.Error(w, r, err)
		return
	}
	logError(slog.Default(), r, err)
	RenderError(w, r, err)
}

// Error is [Error] for a request of this App, wherever it runs.
func (a *App) Error(w http.ResponseWriter, r *http.Request, err error) {
	logError(a.log, r, err)
	a.render(w, r, err)
}

func logError(log *slog.Logger, r *http.Request, err error) {
	status := statusOf(err)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	op := "request"
	var e *core.Error
	if errors.As(err, &e) && e.Op != "" {
		op = e.Op
	}
	log.LogAttrs(r.Context(), level, "smart: "+op+" failed",
		slog.String("code", codeOf(err)),
		slog.Int("status", status),
		slog.String("method", r.Method),
		slog.String("route", routeOf(r)),
		slog.String("error", err.Error()))
}

// statusOf is the HTTP status for err: its Code's; for a FHIR server's
// error answer (a *fhir.Error without a *core.Error in it), 404 for 404
// and 410, 403 for 403, 502 for the rest; 500 for any other error.
func statusOf(err error) int {
	status, _, _ := classify(err)
	return status
}

// codeOf is the code shown for err: its Code, a FHIR code, or
// "server_error".
func codeOf(err error) string {
	_, code, _ := classify(err)
	return code
}

// classify returns the status, the code and the description shown for err.
// A description never carries the EHR's words or an id.
func classify(err error) (status int, code, desc string) {
	var ce *core.Error
	if errors.As(err, &ce) {
		return ce.Code.HTTPStatus(), string(ce.Code), ce.Description
	}
	var fe *fhir.Error
	if errors.As(err, &fe) {
		if errors.Is(err, fhir.ErrInvalidReference) || errors.Is(err, fhir.ErrForeignReference) {
			// The app's own request, refused before anything was sent.
			return http.StatusBadRequest, string(core.CodeInvalidRequest), "the app asked the FHIR server for a reference it does not read"
		}
		switch fe.StatusCode {
		case http.StatusNotFound, http.StatusGone:
			return http.StatusNotFound, "resource_not_found", "the FHIR server has no such resource"
		case http.StatusForbidden:
			return http.StatusForbidden, "fhir_forbidden", "the FHIR server refused access to the resource"
		}
		return http.StatusBadGateway, string(core.CodeFHIRRequestFailed), "the FHIR request failed"
	}
	return http.StatusInternalServerError, "server_error", ""
}

// RenderError is the default [ErrorRenderer]. It answers with the status of
// the error's code (core.Code.HTTPStatus: 400 for a missing or malformed
// parameter, 401 for no or an ended launch, 403 for an unknown issuer, a
// refusal by the EHR or a grant without Config.RequiredScope, 502 when the EHR fails, 503 when the store fails);
// for a FHIR server's error answer (a *fhir.Error), 404
// "resource_not_found" for 404 and 410, 403 "fhir_forbidden" for 403 and
// 502 "fhir_request_failed" for the rest; for any other error 500
// "server_error". When the request's Accept header asks for
// application/json, the body is
//
//	{"error": "<code>", "error_description": "<sentence>"}
//
// or else a small HTML page saying the same, with a hint to launch the app
// again when that is the way out. Only the code and the error's Description
// are shown, never its cause. The response is not cached.
func RenderError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, desc := classify(err)
	p := errorPage{Code: code, Title: errorTitle(status), Description: sentence(desc),
		Relaunch: status == http.StatusUnauthorized || code == string(core.CodeInvalidState)}
	if p.Description == "" {
		p.Description = p.Title + "."
	}
	h := w.Header()
	h.Del("Location")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if wantsJSON(r) {
		h.Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(struct {
			Error       string `json:"error"`
			Description string `json:"error_description,omitempty"`
		}{p.Code, p.Description})
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	errorTemplate.Execute(w, p)
}

// sentence starts desc with a capital letter and ends it with a full stop,
// for the page; error descriptions are written to follow "smart: op: ".
func sentence(desc string) string {
	if desc == "" {
		return ""
	}
	r, n := utf8.DecodeRuneInString(desc)
	desc = string(unicode.ToUpper(r)) + desc[n:]
	if !strings.HasSuffix(desc, ".") {
		desc += "."
	}
	return desc
}

type errorPage struct {
	Code, Title, Description string
	Relaunch                 bool
}

var errorTemplate = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;line-height:1.5}code{color:#555}</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Description}}</p>
{{if .Relaunch}}<p>Launch the app again from your EHR to continue.</p>
{{end}}<p><small>Error code: <code>{{.Code}}</code></small></p>
</body>
</html>
`))

func errorTitle(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "The request is not valid"
	case http.StatusUnauthorized:
		return "No active launch"
	case http.StatusForbidden:
		return "Access was refused"
	case http.StatusNotFound:
		return "Not found"
	case http.StatusBadGateway:
		return "The EHR could not be reached"
	case http.StatusServiceUnavailable:
		return "The service is unavailable"
	}
	return "Something went wrong"
}

// wantsJSON reports whether the Accept header asks for JSON before, or
// instead of, HTML: its first media range that names either, with a
// non-zero quality, decides.
func wantsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, err := strconv.ParseFloat(params["q"], 64); err == nil && q <= 0 {
			continue
		}
		switch {
		case mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"):
			return true
		case mt == "text/html" || mt == "application/xhtml+xml":
			return false
		}
	}
	return false
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
