package core_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// The three steps of a SMART EHR launch, against the fake EHR of
// core/smarttest. In an app, the adapters packages run these steps in the
// launch route, the callback route and the ready middleware.
func Example() {
	ehr := smarttest.NewServer(smarttest.Options{})
	defer ehr.Close()
	ehr.RegisterClient(smarttest.Client{ID: "my-app", Auth: smarttest.AuthPublic})

	eng, err := core.New(core.Config{
		ClientID:          "my-app",
		CallbackURL:       "https://app.example/fhir/callback",
		RedirectURL:       "https://app.example/fhir/",
		Issuers:           []core.Issuer{{URL: ehr.FHIRBaseURL()}},
		AllowInsecureHTTP: true, // smarttest serves plain http
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	var store core.Storage = newMemStorage(nil) // in an app: sessions.NewStorage(sm.Store)
	session := eng.Session("browser-session-id", store)

	// 1. The EHR opens /fhir/launch?iss=…&launch=…
	launch := ehr.NewLaunch(smarttest.LaunchContext{Patient: "pat-1", FHIRUser: "Practitioner/prac-1"})
	authorizeURL, err := session.Launch(ctx, core.LaunchRequest{Issuer: ehr.FHIRBaseURL(), Launch: launch})
	if err != nil {
		panic(err)
	}

	// The browser follows the redirect; the EHR approves and redirects to
	// the callback with code and state.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(authorizeURL)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	cb, _ := url.Parse(resp.Header.Get("Location"))

	// 2. /fhir/callback?code=…&state=…
	res, err := session.Callback(ctx, core.CallbackRequest{Code: cb.Query().Get("code"), State: cb.Query().Get("state")})
	if err != nil {
		panic(err)
	}

	// 3. Every app request: the ReadyClient for the launch.
	rc, err := session.Ready(ctx, res.Handle)
	if err != nil {
		panic(err)
	}
	var patient struct {
		ID     string `json:"id"`
		Gender string `json:"gender"`
	}
	if err := rc.Patient().Read(ctx, &patient); err != nil {
		panic(err)
	}
	fmt.Println(rc.Patient().Reference(), rc.User().Reference(), patient.ID)
	// Output: Patient/pat-1 Practitioner/prac-1 pat-1
}
