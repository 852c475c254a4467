package adapters_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/sessions"
)

// The whole wiring without a router: the SMART routes mounted at /fhir, an app page that
// reads the launched patient, and an EHR launch by a browser, here against
// the sandbox EHR of core/smarttest.
func ExampleApp_Handler() {
	ehr := smarttest.NewServer(smarttest.Options{}) // in production: the EHR
	defer ehr.Close()
	ehr.RegisterClient(smarttest.Client{ID: "my-app"})
	app := httptest.NewUnstartedServer(nil) // in production: the app's own server
	defer app.Close()
	base := "http://" + app.Listener.Addr().String()

	s := adapters.Smart(adapters.Config{
		Config: core.Config{
			ClientID:          "my-app",
			CallbackURL:       base + "/fhir/callback",
			Issuers:           []core.Issuer{{URL: ehr.FHIRBaseURL()}},
			AllowInsecureHTTP: true, // the sandbox speaks plain http
		},
		RedirectURL: "/fhir/",
		Cookies:     sessions.CookieInsecureHTTP, // development on localhost only
	})
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct{ Name []struct{ Family string } }
		rc := adapters.FromContext(r.Context())
		if err := rc.FHIR().Read(r.Context(), rc.Patient().String(), &p); err != nil {
			http.Error(w, "could not read the patient", http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "Patient: %s", p.Name[0].Family)
	})
	mux := http.NewServeMux()
	mux.Handle("/fhir/", http.StripPrefix("/fhir", s.Handler(page)))
	app.Config.Handler = mux
	app.Start()

	// The EHR opens /fhir/launch?iss=…&launch=…; the browser follows the
	// redirects to the EHR's authorize endpoint, the callback and the page.
	_, body, _ := smarttest.Browse(nil, ehr.EHRLaunchURL(base+"/fhir/launch", smarttest.LaunchContext{Patient: "pat-1"}))
	fmt.Println(body)
	// Output: Patient: Shaw
}
