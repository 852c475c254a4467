package benchmarks

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/chiware"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/internal/browsertest"
	"github.com/fhirware/smart/sessions"
)

// BenchmarkLaunchFlow is one launch as the load program's -launches runs
// it, in-process over loopback HTTP: EHR launch → authorize → callback →
// one FHIR read through the ReadyClient, without the app page. The sandbox
// EHR (which signs each id_token with RSA) runs in the same process, so
// the time is not the app's alone; profile it and look at the app's side:
//
//	go test -run '^$' -bench LaunchFlow -cpuprofile /tmp/cpu.out ./internal/benchmarks
//	go tool pprof -top -cum -focus 'adapters|core\.\(\*(Engine|ReadyClient)\)|core/fhir' -ignore smarttest /tmp/cpu.out
func BenchmarkLaunchFlow(b *testing.B) {
	ehr := smarttest.NewServer(smarttest.Options{})
	b.Cleanup(ehr.Close)
	ehr.RegisterClient(smarttest.Client{ID: "app"})
	app := httptest.NewUnstartedServer(nil)
	base := "http://" + app.Listener.Addr().String()
	s := chiware.Smart(adapters.Config{
		Config: core.Config{
			ClientID: "app", CallbackURL: base + "/fhir/callback",
			Issuers: []core.Issuer{{URL: ehr.FHIRBaseURL()}}, AllowInsecureHTTP: true,
		},
		RedirectURL: base + "/fhir/",
		Cookies:     sessions.CookieInsecureHTTP,
	})
	s.Get("/api/patient", func(w http.ResponseWriter, r *http.Request) {
		rc := chiware.ReadyClient(r)
		var patient json.RawMessage
		if err := rc.FHIR().Read(r.Context(), rc.Patient().String(), &patient); err != nil {
			chiware.Error(w, r, err)
			return
		}
		w.Write(patient)
	})
	r := chi.NewRouter()
	r.Mount("/fhir", s)
	app.Config.Handler = r
	app.Start()
	b.Cleanup(app.Close)

	browser := browsertest.New()
	b.Cleanup(browser.CloseIdleConnections)
	b.ReportAllocs()
	for b.Loop() {
		c := browsertest.Fresh(browser) // a new user, over the same connections
		page, err := browsertest.Launch(b.Context(), c, ehr.EHRLaunchURL(base+"/fhir/launch", smarttest.LaunchContext{Patient: "pat-1", FHIRUser: "Practitioner/prac-1"}))
		if err != nil {
			b.Fatal(err)
		}
		resp, err := c.Get(base + "/fhir/api/patient?" + adapters.HandleParam + "=" + page.Query().Get(adapters.HandleParam))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("patient: %d", resp.StatusCode)
		}
	}
}
