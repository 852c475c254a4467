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
// launch route, the callback route and the ready middleware, with the
// browser's id from its session cookie.
func Example() {
	ehr := smarttest.NewServer(smarttest.Options{})
	defer ehr.Close()
	ehr.RegisterClient(smarttest.Client{ID: "my-app", Auth: smarttest.AuthPublic})

	eng, err := core.New(core.Config{
		ClientID:          "my-app",
		CallbackURL:       "https://app.example/fhir/callback",
		Issuers:           []core.Issuer{{URL: ehr.FHIRBaseURL()}},
		AllowInsecureHTTP: true, // smarttest serves plain http
		// Storage: the default keeps records in this process; apps on
		// several instances share one, such as sessions.NewStorage(sm.Store).
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	const browser = "browser-session-id" // opaque and unguessable

	// 1. The EHR opens /fhir/launch?iss=…&launch=…
	launch := ehr.NewLaunch(smarttest.LaunchContext{Patient: "pat-1", FHIRUser: "Practitioner/prac-1"})
	authorizeURL, err := eng.Launch(ctx, browser, ehr.FHIRBaseURL(), launch)
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
	finished, err := eng.Callback(ctx, browser, core.CallbackRequest{Query: cb.Query()})
	if err != nil {
		panic(err)
	}

	// 3. Every app request: the ReadyClient for the launch, named by its
	// handle (or the browser's most recent launch, with "").
	rc, err := eng.Ready(ctx, browser, finished.Handle())
	if err != nil {
		panic(err)
	}
	var patient struct {
		ID     string `json:"id"`
		Gender string `json:"gender"`
	}
	if err := rc.FHIR().Read(ctx, rc.Patient().String(), &patient); err != nil {
		panic(err)
	}
	fmt.Println(rc.Patient(), rc.User(), patient.ID)
	// Output: Patient/pat-1 Practitioner/prac-1 pat-1
}
