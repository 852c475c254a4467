package adapters_test

import (
	"net/http"
	"testing"

	"go.uber.org/goleak"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/internal/adaptertest"
)

// No test leaves a goroutine behind, except the cleanup goroutine of the
// memstore that a default session manager (scs.New) starts for the life of
// the process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/alexedwards/scs/v2/memstore.(*MemStore).startCleanup"))
}

// The plain net/http form: Smart.Handler under a prefix, and the exported
// middleware on a ServeMux.
func TestSuite(t *testing.T) {
	adaptertest.Run(t, adaptertest.Router{
		Mount: func(t testing.TB, cfg adapters.Config) http.Handler {
			s, err := adapters.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			app := http.NewServeMux()
			app.HandleFunc("GET /api/patient", func(w http.ResponseWriter, r *http.Request) {
				adaptertest.Patient(w, r, adapters.FromContext(r.Context()))
			})
			app.HandleFunc("GET /api/chart/{id}", func(w http.ResponseWriter, r *http.Request) {
				adaptertest.Patient(w, r, adapters.FromContext(r.Context()))
			})
			app.HandleFunc("GET /api/fail", func(w http.ResponseWriter, r *http.Request) {
				adaptertest.Touch(r, cfg)
				http.Error(w, "teapot", http.StatusTeapot)
			})
			mux := http.NewServeMux()
			mux.Handle("/fhir/", http.StripPrefix("/fhir", s.Handler(app)))
			mux.Handle("GET /open/whoami", s.LoadReady(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				adaptertest.WhoAmI(w, r, adapters.FromContext(r.Context()))
			})))
			mux.Handle("GET /guarded/patient", s.RequireReady(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				adaptertest.Patient(w, r, adapters.FromContext(r.Context()))
			})))
			return mux
		},
		New: func(cfg adapters.Config) error {
			_, err := adapters.New(cfg)
			return err
		},
		Must: func(cfg adapters.Config) { adapters.Smart(cfg) },
	})
}
