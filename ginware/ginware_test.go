package ginware_test

import (
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"
	"go.uber.org/goleak"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/ginware"
	"github.com/fhirware/smart/internal/adaptertest"
)

// No test leaves a goroutine behind, except the cleanup goroutine of the
// memstore that a default session manager (scs.New) starts for the life of
// the process.
func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/alexedwards/scs/v2/memstore.(*MemStore).startCleanup"))
}

func TestSuite(t *testing.T) {
	adaptertest.Run(t, adaptertest.Router{
		Mount: func(t testing.TB, cfg adapters.Config) http.Handler {
			r := gin.New()
			s, err := ginware.New(r.Group("/fhir"), cfg)
			if err != nil {
				t.Fatal(err)
			}
			s.GET("/api/patient", func(c *gin.Context) {
				adaptertest.Patient(c.Writer, c.Request, ginware.ReadyClient(c))
			})
			s.GET("/api/chart/:id", func(c *gin.Context) {
				adaptertest.Patient(c.Writer, c.Request, ginware.ReadyClient(c))
			})
			s.GET("/api/fail", func(c *gin.Context) {
				adaptertest.Touch(c.Request, cfg)
				c.AbortWithStatus(http.StatusTeapot)
			})
			r.GET("/open/whoami", s.LoadReady, func(c *gin.Context) {
				adaptertest.WhoAmI(c.Writer, c.Request, ginware.ReadyClient(c))
			})
			r.GET("/guarded/patient", s.RequireReady, func(c *gin.Context) {
				adaptertest.Patient(c.Writer, c.Request, ginware.ReadyClient(c))
			})
			return r
		},
		New: func(cfg adapters.Config) error {
			_, err := ginware.New(gin.New().Group("/fhir"), cfg)
			return err
		},
		Must: func(cfg adapters.Config) { ginware.Smart(gin.New().Group("/fhir"), cfg) },
	})
}
