package fhir_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/fhirware/smart/core/fhir"
	"github.com/fhirware/smart/core/smarttest"
)

// seenRequest is a request as a test server received it.
type seenRequest struct {
	Method string
	URL    *url.URL
	Header http.Header
}

// recorder records requests: those a handler serves, or those a client
// sends through its Transport.
type recorder struct {
	mu   sync.Mutex
	seen []seenRequest
}

func (rec *recorder) record(r *http.Request) {
	rec.mu.Lock()
	rec.seen = append(rec.seen, seenRequest{Method: r.Method, URL: r.URL, Header: r.Header.Clone()})
	rec.mu.Unlock()
}

// wrap records the requests h serves.
func (rec *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		h.ServeHTTP(w, r)
	})
}

// RoundTrip records the request as it goes on the wire, headers and all,
// and sends it with http.DefaultTransport.
func (rec *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	rec.record(r)
	return http.DefaultTransport.RoundTrip(r)
}

// requests returns the requests received whose path is path, or all of
// them for "".
func (rec *recorder) requests(path string) []seenRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []seenRequest
	for _, r := range rec.seen {
		if path == "" || r.URL.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// fhirEnv is a fake EHR (smarttest) and a Client for its FHIR server
// that sends a bearer token through golang.org/x/oauth2, as an app outside
// a launch would. The recorder sees every request as it goes on the wire.
type fhirEnv struct {
	recorder
	ehr   *smarttest.Server
	base  string // the FHIR base URL
	token string
	c     *fhir.Client
}

// newEnv starts a fake EHR and returns the env with its Client.
func newEnv(t testing.TB) *fhirEnv {
	t.Helper()
	env := &fhirEnv{ehr: smarttest.NewServer(smarttest.Options{})}
	t.Cleanup(env.ehr.Close)
	env.base = env.ehr.FHIRBaseURL()
	tok, err := env.ehr.IssueAccessToken("app", "patient/*.cruds", smarttest.LaunchContext{Patient: "pat-1"})
	if err != nil {
		t.Fatal(err)
	}
	env.token = tok
	// oauth2.NewClient builds on the client in its context: the recorder.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: &env.recorder})
	hc := oauth2.NewClient(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok}))
	if env.c, err = fhir.NewClient(env.base, hc); err != nil {
		t.Fatal(err)
	}
	return env
}

// hostile starts a FHIR server that answers with h, and returns a Client
// for its base URL, srv.URL+"/fhir", and the recorder of its requests.
func hostile(t testing.TB, h http.HandlerFunc) (*fhir.Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(rec.wrap(h))
	t.Cleanup(srv.Close)
	c, err := fhir.NewClient(srv.URL+"/fhir", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

// Resource shapes the tests decode into: the app's own, not a FHIR model.
type (
	fhirPatient struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Gender       string `json:"gender"`
		BirthDate    string `json:"birthDate"`
		Meta         struct {
			VersionID string `json:"versionId"`
		} `json:"meta"`
	}
	fhirObservation struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Status       string `json:"status"`
		Subject      struct {
			Reference string `json:"reference"`
		} `json:"subject"`
		Meta struct {
			VersionID string `json:"versionId,omitempty"`
		} `json:"meta,omitzero"`
	}
)

// wantError checks that err is an *fhir.Error with the status, and that
// no *url.Error (whose message holds the URL) is in its chain.
func wantError(t testing.TB, err error, status int) *fhir.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one with status %d", status)
	}
	var e *fhir.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *fhir.Error", err, err)
	}
	if e.StatusCode != status {
		t.Fatalf("got status %d (%v), want %d", e.StatusCode, err, status)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		t.Errorf("a *url.Error surfaced: %v", ue)
	}
	return e
}

// second returns the error of a two-valued call.
func second[T any](_ T, err error) error { return err }
