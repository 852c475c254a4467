package smarttest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/go-chi/chi/v5"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/chiware"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/sessions"
)

// newRouter is the app under test: its router, built from cfg, with the
// SMART routes at /fhir and a page that reads the launched patient.
func newRouter(cfg adapters.Config) http.Handler {
	type Patient struct {
		BirthDate string `json:"birthDate"`
		Name      []struct {
			Family string `json:"family"`
		} `json:"name"`
	}
	s := chiware.Smart(cfg)
	s.Get("/", func(w http.ResponseWriter, r *http.Request) {
		rc := chiware.ReadyClient(r)
		var p Patient
		if err := rc.FHIR().Read(r.Context(), rc.Patient().String(), &p); err != nil {
			chiware.Error(w, r, err)
			return
		}
		fmt.Fprintf(w, "%s, born %s", p.Name[0].Family, p.BirthDate)
	})
	r := chi.NewRouter()
	r.Mount("/fhir", s)
	return r
}

// A whole EHR launch of an app, in-process: the EHR opens the app's launch
// URL, and Browse, a browser with a cookie jar, follows the redirects
// through the EHR's authorize endpoint and the app's callback to the app's
// page. In a test, t.Cleanup takes the place of the defers, and t.Errorf
// of the Output comment.
func ExampleServer_EHRLaunchURL() {
	ehr := smarttest.NewServer(smarttest.Options{})
	defer ehr.Close()
	ehr.RegisterClient(smarttest.Client{ID: "my-app"})

	app := httptest.NewUnstartedServer(nil)
	defer app.Close()
	app.Config.Handler = newRouter(adapters.Config{
		Config: core.Config{
			ClientID:          "my-app",
			CallbackURL:       "http://" + app.Listener.Addr().String() + "/fhir/callback",
			Issuers:           []core.Issuer{{URL: ehr.FHIRBaseURL()}},
			AllowInsecureHTTP: true, // smarttest serves plain http on loopback
		},
		RedirectURL: "/fhir/",
		Cookies:     sessions.CookieInsecureHTTP,
	})
	app.Start()

	launch := ehr.EHRLaunchURL(app.URL+"/fhir/launch", smarttest.LaunchContext{Patient: "pat-1"})
	status, body, err := smarttest.Browse(nil, launch) // launch, authorize, callback, app page
	if err != nil {
		panic(err)
	}
	fmt.Println(status, body)
	// Output: 200 Shaw, born 1987-02-20
}
