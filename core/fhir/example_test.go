package fhir_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/url"

	"golang.org/x/oauth2"

	"github.com/fhirware/smart/core/fhir"
	"github.com/fhirware/smart/core/smarttest"
)

// A Client for a FHIR server that wants a bearer token. (The examples run
// against smarttest, an in-process FHIR server, with a token it issued.)
func ExampleNewClient() {
	ehr := smarttest.NewServer(smarttest.Options{})
	defer ehr.Close()
	token, err := ehr.IssueAccessToken("my-app", "patient/*.rs", smarttest.LaunchContext{Patient: "pat-1"})
	if err != nil {
		log.Fatal(err)
	}

	// Any *http.Client that authenticates to the server: here one that
	// sends a bearer token, through golang.org/x/oauth2.
	ctx := context.Background()
	hc := oauth2.NewClient(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}))
	c, err := fhir.NewClient(ehr.FHIRBaseURL(), hc)
	if err != nil {
		log.Fatal(err)
	}

	var p struct {
		Gender    string `json:"gender"`
		BirthDate string `json:"birthDate"`
	}
	if err := c.Read(ctx, "Patient/pat-1", &p); err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Gender, p.BirthDate)
	// Output: female 1987-02-20
}

// sandbox starts an in-process FHIR server and returns a Client for it, as
// ExampleNewClient makes one, and a function that stops the server.
func sandbox() (*fhir.Client, func()) {
	ehr := smarttest.NewServer(smarttest.Options{})
	token, err := ehr.IssueAccessToken("my-app", "patient/*.cruds", smarttest.LaunchContext{Patient: "pat-1"})
	if err != nil {
		log.Fatal(err)
	}
	hc := oauth2.NewClient(context.Background(), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}))
	c, err := fhir.NewClient(ehr.FHIRBaseURL(), hc)
	if err != nil {
		log.Fatal(err)
	}
	return c, ehr.Close
}

func ExampleRead() {
	c, stop := sandbox()
	defer stop()
	ctx := context.Background()

	// The app's own type: the fields it needs, no FHIR model.
	type Patient struct {
		ID     string `json:"id"`
		Gender string `json:"gender"`
	}
	p, err := fhir.Read[Patient](ctx, c, "Patient/pat-2")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.ID, p.Gender)

	_, err = fhir.Read[Patient](ctx, c, "Patient/nobody")
	fmt.Println(errors.Is(err, fhir.ErrNotFound))
	// Output:
	// pat-2 male
	// true
}

// The five latest observations of a patient: the server sorts, Limit stops
// after five, and no further page is fetched.
func ExampleLimit() {
	c, stop := sandbox()
	defer stop()
	ctx := context.Background()

	type Observation struct {
		Subject struct {
			Reference string `json:"reference"`
		} `json:"subject"`
	}
	q := url.Values{"patient": {"pat-1"}, "_sort": {"-date"}}
	n := 0
	for obs, err := range fhir.Search[Observation](ctx, c, "Observation", q, fhir.Limit(5)) {
		if err != nil {
			log.Fatal(err)
		}
		if obs.Subject.Reference == "Patient/pat-1" {
			n++
		}
	}
	fmt.Println(n, "observations of Patient/pat-1")
	// Output: 5 observations of Patient/pat-1
}

// An update that is refused when another write came first: FHIR's
// optimistic locking.
func ExampleIfMatch() {
	c, stop := sandbox()
	defer stop()
	ctx := context.Background()

	// An update replaces the whole resource: read it whole.
	obs, err := fhir.Read[map[string]any](ctx, c, "Observation/obs-1")
	if err != nil {
		log.Fatal(err)
	}
	meta, _ := obs["meta"].(map[string]any)
	version, _ := meta["versionId"].(string)

	obs["status"] = "amended"
	res, err := c.Update(ctx, "Observation/obs-1", obs, fhir.IfMatch(version))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Status, "version", res.VersionID)

	// The same update again, from the version read before: refused.
	_, err = c.Update(ctx, "Observation/obs-1", obs, fhir.IfMatch(version))
	var e *fhir.Error
	if errors.As(err, &e) {
		fmt.Println(e.StatusCode)
	}
	// Output:
	// 200 version 2
	// 412
}

// A transaction: the server runs all of its entries or none. A fullUrl
// names the resource an entry creates, so that other entries of the
// transaction can refer to it.
func ExampleClient_Transaction() {
	c, stop := sandbox()
	defer stop()
	ctx := context.Background()

	const newObs = "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"
	resps, err := c.Transaction(ctx, []fhir.BundleEntry{
		{Method: "POST", URL: "Observation", FullURL: newObs, Resource: map[string]any{
			"resourceType": "Observation", "status": "final",
			"code":    map[string]any{"text": "Heart rate"},
			"subject": map[string]any{"reference": "Patient/pat-1"},
		}},
		{Method: "PATCH", URL: "Observation/obs-2", Resource: []fhir.PatchOp{
			{Op: "replace", Path: "/status", Value: "entered-in-error"},
		}},
	})
	if err != nil {
		log.Fatal(err) // the server refused the whole transaction
	}
	for _, r := range resps {
		fmt.Println(r.Status, r.Err())
	}
	// Output:
	// 201 <nil>
	// 200 <nil>
}
