package echoware_test

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/echoware"
)

// An app at https://app.example.com that accepts launches from one EHR:
// the SMART routes in the /fhir group, and an app page that reads the
// launched patient with the launch's FHIR client. (The README's wiring.)
func ExampleSmart() {
	cfg := adapters.Config{
		Config: core.Config{
			ClientID:    "my-app",
			CallbackURL: "https://app.example.com/fhir/callback",
			Issuers:     []core.Issuer{{URL: "https://ehr.example.com/fhir/r4"}},
		},
		RedirectURL: "/fhir/",
	}
	type Patient struct {
		BirthDate string `json:"birthDate"`
		Name      []struct {
			Family string `json:"family"`
		} `json:"name"`
	}

	e := echo.New()
	s := echoware.Smart(e.Group("/fhir"), cfg) // GET /launch, GET /callback, POST /logout
	s.GET("/", func(c echo.Context) error {
		rc := echoware.ReadyClient(c)
		var p Patient
		if err := rc.FHIR().Read(c.Request().Context(), rc.Patient().String(), &p); err != nil {
			return echoware.Error(c, err) // the error page, with the EHR's status (404, 403, 502)
		}
		return c.String(http.StatusOK, p.Name[0].Family+", born "+p.BirthDate)
	})
	e.Start(":8080")
}
