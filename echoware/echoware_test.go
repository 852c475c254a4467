package echoware_test

import (
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"
	"go.uber.org/goleak"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/echoware"
	"github.com/fhirware/smart/internal/adaptertest"
)

// No test leaves a goroutine behind, except the cleanup goroutine of the
// memstore that a default session manager (scs.New) starts for the life of
// the process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/alexedwards/scs/v2/memstore.(*MemStore).startCleanup"))
}

func TestSuite(t *testing.T) {
	adaptertest.Run(t, adaptertest.Router{
		Mount: func(t testing.TB, cfg adapters.Config) http.Handler {
			e := echo.New()
			s, err := echoware.New(e.Group("/fhir"), cfg)
			if err != nil {
				t.Fatal(err)
			}
			s.GET("/api/patient", func(c echo.Context) error {
				adaptertest.Patient(c.Response(), c.Request(), echoware.ReadyClient(c))
				return nil
			})
			s.GET("/api/chart/:id", func(c echo.Context) error {
				adaptertest.Patient(c.Response(), c.Request(), echoware.ReadyClient(c))
				return nil
			})
			s.GET("/api/fail", func(c echo.Context) error {
				adaptertest.Touch(c.Request(), cfg)
				return echo.NewHTTPError(http.StatusTeapot, "teapot")
			})
			e.GET("/open/whoami", func(c echo.Context) error {
				adaptertest.WhoAmI(c.Response(), c.Request(), echoware.ReadyClient(c))
				return nil
			}, s.LoadReady)
			e.GET("/guarded/patient", func(c echo.Context) error {
				adaptertest.Patient(c.Response(), c.Request(), echoware.ReadyClient(c))
				return nil
			}, s.RequireReady)
			return e
		},
		New: func(cfg adapters.Config) error {
			_, err := echoware.New(echo.New().Group("/fhir"), cfg)
			return err
		},
		Must: func(cfg adapters.Config) { echoware.Smart(echo.New().Group("/fhir"), cfg) },
	})
}
