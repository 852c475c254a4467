package smarttest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/fhirware/smart/core/smarttest"
)

// A test starts the fake EHR, registers its app and launches it; the app
// discovers the authorization server from the iss it was given.
func Example() {
	ehr := smarttest.NewServer(smarttest.Options{})
	defer ehr.Close()
	ehr.RegisterClient(smarttest.Client{ID: "my-app", RedirectURIs: []string{"https://app.example/callback"}})

	launch := ehr.EHRLaunchURL("https://app.example/launch", smarttest.LaunchContext{
		Patient: "pat-1", Encounter: "enc-1", FHIRUser: "Practitioner/prac-1",
	})
	u, _ := url.Parse(launch)
	iss := u.Query().Get("iss")

	resp, err := http.Get(iss + "/.well-known/smart-configuration")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var conf struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	json.NewDecoder(resp.Body).Decode(&conf)

	fmt.Println(iss == ehr.FHIRBaseURL(), conf.Issuer == ehr.AuthIssuer(), conf.TokenEndpoint == ehr.TokenURL())
	for _, p := range ehr.Patients() {
		fmt.Println(p.ID, p.Name, p.Gender, p.BirthDate)
	}
	// Output:
	// true true true
	// pat-1 Amy Shaw female 1987-02-20
	// pat-2 Daniel Adams male 1965-08-11
	// pat-3 Maria Garcia female 2001-11-03
}

// Faults make the EHR misbehave for one test: here the CapabilityStatement fails
// once, as a flaky EHR would.
func ExampleServer_SetFaults() {
	ehr := smarttest.NewServer(smarttest.Options{})
	defer ehr.Close()
	ehr.SetFaults(smarttest.Faults{
		FailTimes: map[smarttest.Endpoint]int{smarttest.EndpointMetadata: 1},
	})
	for range 2 {
		resp, err := http.Get(ehr.FHIRBaseURL() + "/metadata")
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	fmt.Println(ehr.Count(smarttest.EndpointMetadata))
	// Output:
	// 500
	// 200
	// 2
}
