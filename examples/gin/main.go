// Command gin is a SMART on FHIR app on gin. Run without flags, it starts
// an embedded sandbox EHR and prints the URL to open; see -help for running
// it against a real EHR.
//
//	go run ./examples/gin
package main

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/examples/internal/exampleapp"
	"github.com/fhirware/smart/ginware"
)

func main() {
	gin.SetMode(gin.ReleaseMode)
	exampleapp.Main("gin", mount)
}

// mount wires the app into gin: the SMART routes and the app's pages in
// the /fhir group, behind the ready middleware, and /healthz outside the
// session.
func mount(cfg adapters.Config, app *exampleapp.App) (http.Handler, error) {
	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/healthz", gin.WrapF(exampleapp.Healthz))

	s, err := ginware.New(r.Group("/fhir"), cfg) // GET /launch, GET /callback, POST /logout
	if err != nil {
		return nil, err
	}
	s.GET("/", func(c *gin.Context) {
		link := func(path string) string { return ginware.URL(c, path) }
		app.Page(c.Writer, c.Request, ginware.ReadyClient(c), link)
	})
	s.GET("/api/context", func(c *gin.Context) {
		c.JSON(http.StatusOK, ginware.ReadyClient(c).LaunchContext()) // no FHIR call
	})
	s.GET("/api/patient", func(c *gin.Context) {
		rc := ginware.ReadyClient(c)
		var patient json.RawMessage
		if err := rc.FHIR().Read(c.Request.Context(), rc.Patient().String(), &patient); err != nil {
			ginware.Error(c, err)
			return
		}
		c.JSON(http.StatusOK, patient)
	})
	return r, nil
}
