package ginware_test

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/ginware"
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

	r := gin.New()
	s := ginware.Smart(r.Group("/fhir"), cfg) // GET /launch, GET /callback, POST /logout
	s.GET("/", func(c *gin.Context) {
		rc := ginware.ReadyClient(c)
		var p Patient
		if err := rc.FHIR().Read(c.Request.Context(), rc.Patient().String(), &p); err != nil {
			ginware.Error(c, err) // the error page, with the EHR's status (404, 403, 502)
			return
		}
		c.String(http.StatusOK, "%s, born %s", p.Name[0].Family, p.BirthDate)
	})
	r.Run(":8080")
}
