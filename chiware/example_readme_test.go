package chiware_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"

	"github.com/alexedwards/scs/v2"
	"github.com/go-chi/chi/v5"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/chiware"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/sessions"
)

// An app at https://app.example.com that accepts launches from one EHR:
// the SMART routes mounted at /fhir, and an app page that reads the
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
		ID        string `json:"id"`
		BirthDate string `json:"birthDate"`
		Name      []struct {
			Family string   `json:"family"`
			Given  []string `json:"given"`
		} `json:"name"`
	}

	s := chiware.Smart(cfg) // GET /launch, GET /callback, POST /logout
	s.Get("/", func(w http.ResponseWriter, r *http.Request) {
		rc := chiware.ReadyClient(r)
		var p Patient
		if err := rc.FHIR().Read(r.Context(), rc.Patient().String(), &p); err != nil {
			chiware.Error(w, r, err) // the error page, with the EHR's status (404, 403, 502)
			return
		}
		fmt.Fprintf(w, "%s, born %s", p.Name[0].Family, p.BirthDate)
	})
	r := chi.NewRouter()
	r.Mount("/fhir", s)
	http.ListenAndServe(":8080", r)
}

// An app that keeps values of its own in the browser session wraps its
// routes in the LoadAndSave of its session manager, and passes the same
// manager as Config.SessionManager: the SMART routes and middleware then use
// the session it loaded, so a request saves it once, with one Set-Cookie.
// Here against the sandbox EHR of core/smarttest.
func ExampleSmart_sessionManager() {
	ehr := smarttest.NewServer(smarttest.Options{})
	defer ehr.Close()
	ehr.RegisterClient(smarttest.Client{ID: "my-app"})
	app := httptest.NewUnstartedServer(nil)
	defer app.Close()

	sm := scs.New()
	sm.ErrorFunc = sessions.StoreErrorFunc(nil) // a failing store answers 503, as the SMART routes do
	cfg := adapters.Config{
		Config: core.Config{
			ClientID:          "my-app",
			CallbackURL:       "http://" + app.Listener.Addr().String() + "/fhir/callback",
			Issuers:           []core.Issuer{{URL: ehr.FHIRBaseURL()}},
			AllowInsecureHTTP: true, // the sandbox speaks plain http
		},
		SessionManager: sm,
		RedirectURL:    "/fhir/",
		Cookies:        sessions.CookieInsecureHTTP, // development on localhost only
	}
	s := chiware.Smart(cfg)
	s.Get("/", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "theme", "dark") // the app's own value, saved with the SMART ones
		fmt.Fprint(w, chiware.ReadyClient(r).Patient())
	})

	r := chi.NewRouter()
	r.Use(sm.LoadAndSave) // the app's session; the SMART routes use it: one load, one save
	r.Mount("/fhir", s)

	app.Config.Handler = r
	app.Start()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(ehr.EHRLaunchURL(app.URL+"/fhir/launch", smarttest.LaunchContext{Patient: "pat-1"}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%s, %d Set-Cookie\n", body, len(resp.Header.Values("Set-Cookie")))
	// Output: Patient/pat-1, 1 Set-Cookie
}

// An app that the EHR shows in an iframe needs a session cookie that the
// browser sends from inside the EHR's page, and keeps when it blocks
// third-party cookies. Here the launch route sets it, for a launch from the
// sandbox EHR of core/smarttest.
func ExampleSmart_embeddedInEHR() {
	ehr := smarttest.NewServer(smarttest.Options{})
	defer ehr.Close()
	ehr.RegisterClient(smarttest.Client{ID: "my-app"})
	app := httptest.NewUnstartedServer(nil)
	defer app.Close()
	cfg := adapters.Config{
		Config: core.Config{
			ClientID:          "my-app",
			CallbackURL:       "http://" + app.Listener.Addr().String() + "/fhir/callback",
			Issuers:           []core.Issuer{{URL: ehr.FHIRBaseURL()}},
			AllowInsecureHTTP: true, // the sandbox speaks plain http; the app itself must be https
		},
		RedirectURL: "/fhir/",
	}

	cfg.Cookies = sessions.CookieEmbeddedInEHR // SameSite=None; Secure; Partitioned
	s := chiware.Smart(cfg)

	r := chi.NewRouter()
	r.Mount("/fhir", s)
	app.Config.Handler = r
	app.Start()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(ehr.EHRLaunchURL(app.URL+"/fhir/launch", smarttest.LaunchContext{Patient: "pat-1"}))
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	c := resp.Cookies()[0]
	fmt.Println(c.Name, c.SameSite == http.SameSiteNoneMode, c.Secure, c.Partitioned, c.HttpOnly)
	// Output: __Host-smart_session true true true true
}

// The engine's spans and metrics go to the providers of the Config (the
// README's Observability section).
func ExampleSmart_observability() {
	tp := sdktrace.NewTracerProvider() // add the exporter of your choice
	mp := sdkmetric.NewMeterProvider() // and a reader
	cfg := adapters.Config{
		Config: core.Config{
			ClientID:       "my-app",
			CallbackURL:    "https://app.example.com/fhir/callback",
			Issuers:        []core.Issuer{{URL: "https://ehr.example.com/fhir/r4"}},
			TracerProvider: tp, // the default is otel.GetTracerProvider()
			MeterProvider:  mp, // the default is otel.GetMeterProvider()
		},
		RedirectURL: "/fhir/",
	}
	s := chiware.Smart(cfg)
	fmt.Println(s.Engine().Config().TracerProvider == tp)
	// Output: true
}
