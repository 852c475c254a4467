package chiware_test

import (
	"net/http"
	"testing"

	"github.com/go-chi/chi/v5"
	"go.uber.org/goleak"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/chiware"
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
			s, err := chiware.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			s.Get("/api/patient", func(w http.ResponseWriter, r *http.Request) {
				adaptertest.Patient(w, r, chiware.ReadyClient(r))
			})
			s.Get("/api/chart/{id}", func(w http.ResponseWriter, r *http.Request) {
				adaptertest.Patient(w, r, chiware.ReadyClient(r))
			})
			s.Get("/api/fail", func(w http.ResponseWriter, r *http.Request) {
				adaptertest.Touch(r, cfg)
				http.Error(w, "teapot", http.StatusTeapot)
			})
			r := chi.NewRouter()
			r.Mount("/fhir", s)
			r.With(s.LoadReady).Get("/open/whoami", func(w http.ResponseWriter, r *http.Request) {
				adaptertest.WhoAmI(w, r, chiware.ReadyClient(r))
			})
			r.With(s.RequireReady).Get("/guarded/patient", func(w http.ResponseWriter, r *http.Request) {
				adaptertest.Patient(w, r, chiware.ReadyClient(r))
			})
			return r
		},
		New: func(cfg adapters.Config) error {
			_, err := chiware.New(cfg)
			return err
		},
		Must: func(cfg adapters.Config) { chiware.Smart(cfg) },
	})
}
