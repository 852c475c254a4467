// Command chi is a SMART on FHIR app on the chi router. Run without flags,
// it starts an embedded sandbox EHR and prints the URL to open; see
// -help for running it against a real EHR.
//
//	go run ./examples/chi
package main

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/chiware"
	"github.com/fhirware/smart/examples/internal/exampleapp"
)

func main() { exampleapp.Main("chi", mount) }

// mount wires the app into chi: the SMART routes and the app's pages under
// /fhir, behind the ready middleware, and /healthz outside the session.
func mount(cfg adapters.Config, app *exampleapp.App) (http.Handler, error) {
	s, err := chiware.New(cfg) // GET /launch, GET /callback, POST /logout
	if err != nil {
		return nil, err
	}
	s.Get("/", func(w http.ResponseWriter, r *http.Request) {
		link := func(path string) string { return chiware.URL(r, path) }
		app.Page(w, r, chiware.ReadyClient(r), link)
	})
	s.Get("/api/context", func(w http.ResponseWriter, r *http.Request) {
		app.JSON(w, chiware.ReadyClient(r).LaunchContext()) // no FHIR call
	})
	s.Get("/api/patient", func(w http.ResponseWriter, r *http.Request) {
		rc := chiware.ReadyClient(r)
		var patient json.RawMessage
		if err := rc.FHIR().Read(r.Context(), rc.Patient().String(), &patient); err != nil {
			chiware.Error(w, r, err)
			return
		}
		app.JSON(w, patient)
	})

	r := chi.NewRouter()
	r.Get("/healthz", exampleapp.Healthz)
	r.Mount("/fhir", s)
	return r, nil
}
