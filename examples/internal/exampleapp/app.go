package exampleapp

import (
	"embed"
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
)

// The paths of every example: the SMART routes and the app under /fhir,
// and the health check and the JWKS outside the browser session.
const (
	Prefix       = "/fhir"
	LaunchPath   = Prefix + "/launch"
	CallbackPath = Prefix + "/callback"
	PagePath     = Prefix + "/"
	ContextPath  = Prefix + "/api/context"
	PatientPath  = Prefix + "/api/patient"
	HealthPath   = "/healthz"
	// JWKSPath publishes the app's public key when it signs with
	// -private-key (private_key_jwt), for the EHR to register.
	JWKSPath = "/.well-known/jwks.json"
)

//go:embed templates/page.html
var templates embed.FS

var pageTemplate = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"date":           date,
	"title":          title,
	"name":           displayName,
	"encounterClass": encounterClass,
}).ParseFS(templates, "templates/page.html"))

// App is the part of the example app every router shares: the app page
// and the JSON answers. Its methods take the ReadyClient the router's
// accessor returns (chiware.ReadyClient, echoware.ReadyClient,
// ginware.ReadyClient).
type App struct {
	router string
	log    *slog.Logger
}

// Page answers the app page: a patient banner, the logged-in user, the
// encounter, recent observations and conditions, all read through rc.
// link turns an app path into a URL that keeps the request's launch handle
// (chiware.URL and its siblings). A failure to read the patient is answered
// with the adapters' error page (502 when the EHR fails).
func (a *App) Page(w http.ResponseWriter, r *http.Request, rc *core.ReadyClient, link func(path string) string) {
	c, err := loadChart(r.Context(), rc)
	if err != nil {
		a.Fail(w, r, err)
		return
	}
	var id *identifier
	if len(c.Patient.Identifier) > 0 {
		id = &c.Patient.Identifier[0]
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("Referrer-Policy", "no-referrer")
	err = pageTemplate.Execute(w, map[string]any{
		"Router":     a.router,
		"Issuer":     rc.LaunchContext().Issuer,
		"Name":       displayName(c.Patient.Name),
		"Identifier": id,
		"Chart":      c,
		"Links": map[string]string{
			"Page":    link(PagePath),
			"Context": link(ContextPath),
			"Patient": link(PatientPath),
		},
	})
	if err != nil {
		a.log.Error("example: rendering the app page", "error", err)
	}
}

// JSON answers 200 with v as JSON, not indented: the API is read by the
// page's scripts, and indenting costs on every request.
func (a *App) JSON(w http.ResponseWriter, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		a.log.Error("example: writing JSON", "error", err)
	}
}

// Fail answers with the adapters' error page, or JSON when the request
// asks for it, with the status of err's code; the cause goes to the log.
func (a *App) Fail(w http.ResponseWriter, r *http.Request, err error) {
	adapters.Error(w, r, err)
}

// Healthz answers 200 "ok". It touches no session and no EHR.
func Healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}
