package echoware_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/labstack/echo/v4"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/echoware"
	"github.com/fhirware/smart/sessions"
)

// The whole wiring: the SMART routes mounted at /fhir, an app page that
// reads the launched patient, and an EHR launch by a browser, here against
// the sandbox EHR of core/smarttest.
func Example() {
	ehr := smarttest.NewServer(smarttest.Options{}) // in production: the EHR
	defer ehr.Close()
	ehr.RegisterClient(smarttest.Client{ID: "my-app"})
	app := httptest.NewUnstartedServer(nil) // in production: the app's own server
	defer app.Close()
	base := "http://" + app.Listener.Addr().String()

	e := echo.New()
	s := echoware.Smart(e.Group("/fhir"), adapters.Config{
		Config: core.Config{
			ClientID:          "my-app",
			CallbackURL:       base + "/fhir/callback",
			Issuers:           []core.Issuer{{URL: ehr.FHIRBaseURL()}},
			AllowInsecureHTTP: true, // the sandbox speaks plain http
		},
		RedirectURL: "/fhir/",
		Cookies:     sessions.CookieInsecureHTTP, // development on localhost only
	})
	s.GET("/", func(c echo.Context) error {
		var p struct{ Name []struct{ Family string } }
		rc := echoware.ReadyClient(c)
		if err := rc.FHIR().Read(c.Request().Context(), rc.Patient().String(), &p); err != nil {
			return echo.NewHTTPError(http.StatusBadGateway, "could not read the patient")
		}
		return c.String(http.StatusOK, "Patient: "+p.Name[0].Family)
	})
	app.Config.Handler = e
	app.Start()

	// The EHR opens /fhir/launch?iss=…&launch=…; the browser follows the
	// redirects to the EHR's authorize endpoint, the callback and the page.
	_, body, _ := smarttest.Browse(nil, ehr.EHRLaunchURL(base+"/fhir/launch", smarttest.LaunchContext{Patient: "pat-1"}))
	fmt.Println(body)
	// Output: Patient: Shaw
}
