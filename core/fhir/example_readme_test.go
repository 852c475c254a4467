package fhir_test

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"

	"github.com/go-chi/chi/v5"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/chiware"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/fhir"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/sessions"
)

// A search in an app launched with SMART, on chi: the launch's Client
// (core's ReadyClient.FHIR) sends the launch's token, refreshed as needed,
// and chiware.URL keeps every link on the tab's launch. Here the app runs
// against the sandbox EHR of core/smarttest.
func ExampleSearch_launch() {
	ehr := smarttest.NewServer(smarttest.Options{})
	defer ehr.Close()
	ehr.RegisterClient(smarttest.Client{ID: "my-app"})
	app := httptest.NewUnstartedServer(nil)
	defer app.Close()
	s := chiware.Smart(adapters.Config{
		Config: core.Config{
			ClientID:          "my-app",
			CallbackURL:       "http://" + app.Listener.Addr().String() + "/fhir/callback",
			Issuers:           []core.Issuer{{URL: ehr.FHIRBaseURL()}},
			AllowInsecureHTTP: true, // the sandbox speaks plain http
		},
		RedirectURL: "/fhir/conditions",
		Cookies:     sessions.CookieInsecureHTTP, // development on localhost only
	})
	type Condition struct {
		ID   string `json:"id"`
		Code struct {
			Text string `json:"text"`
		} `json:"code"`
	}

	s.Get("/conditions", func(w http.ResponseWriter, r *http.Request) {
		ctx, rc := r.Context(), chiware.ReadyClient(r)
		q := url.Values{"patient": {rc.Patient().ID}, "_sort": {"-date"}}
		for c, err := range fhir.Search[Condition](ctx, rc.FHIR(), "Condition", q, fhir.Limit(10)) {
			if err != nil {
				chiware.Error(w, r, err)
				return
			}
			link := chiware.URL(r, "/fhir/conditions/"+c.ID) // keeps this tab's launch
			fmt.Fprintf(w, "<a href=%q>%s</a>\n", link, html.EscapeString(c.Code.Text))
		}
	})

	r := chi.NewRouter()
	r.Mount("/fhir", s)
	app.Config.Handler = r
	app.Start()
	_, body, err := smarttest.Browse(nil, ehr.EHRLaunchURL(app.URL+"/fhir/launch", smarttest.LaunchContext{Patient: "pat-1"}))
	if err != nil {
		fmt.Println(err)
		return
	}
	// The handle is random: shown as … here.
	fmt.Print(regexp.MustCompile(`launch_handle=[^"]+`).ReplaceAllString(body, "launch_handle=…"))
	// Output:
	// <a href="/fhir/conditions/cond-1?launch_handle=…">Essential hypertension</a>
	// <a href="/fhir/conditions/cond-2?launch_handle=…">Asthma</a>
}
