// Command echo is a SMART on FHIR app on echo (v4). Run without flags, it
// starts an embedded sandbox EHR and prints the URL to open; see -help for
// running it against a real EHR.
//
//	go run ./examples/echo
package main

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/echoware"
	"github.com/fhirware/smart/examples/internal/exampleapp"
)

func main() { exampleapp.Main("echo", mount) }

// mount wires the app into echo: the SMART routes and the app's pages in
// the /fhir group, behind the ready middleware, and /healthz outside the
// session.
func mount(cfg adapters.Config, app *exampleapp.App) (http.Handler, error) {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/healthz", echo.WrapHandler(http.HandlerFunc(exampleapp.Healthz)))

	s, err := echoware.New(e.Group("/fhir"), cfg) // GET /launch, GET /callback, POST /logout
	if err != nil {
		return nil, err
	}
	s.GET("/", func(c echo.Context) error {
		link := func(path string) string { return echoware.URL(c, path) }
		app.Page(c.Response(), c.Request(), echoware.ReadyClient(c), link)
		return nil
	})
	s.GET("/api/context", func(c echo.Context) error {
		return c.JSON(http.StatusOK, echoware.ReadyClient(c).LaunchContext()) // no FHIR call
	})
	s.GET("/api/patient", func(c echo.Context) error {
		rc := echoware.ReadyClient(c)
		var patient json.RawMessage
		if err := rc.FHIR().Read(c.Request().Context(), rc.Patient().String(), &patient); err != nil {
			return echoware.Error(c, err)
		}
		return c.JSON(http.StatusOK, patient)
	})
	return e, nil
}
