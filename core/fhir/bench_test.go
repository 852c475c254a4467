package fhir_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/fhirware/smart/core/fhir"
	"github.com/fhirware/smart/core/smarttest"
)

// The two benchmarks make the same read of the same in-process FHIR server
// (smarttest over loopback HTTP), with the same bearer token, and decode it
// into the same struct: once through a fhir.Client, once with a plain
// http.Client. Their difference is what the Client costs (URL checks,
// Accept header, size cap). The names are key=value pairs so that
// benchstat puts them side by side: benchstat -col /client.
func BenchmarkRead(b *testing.B) {
	b.Run("client=plain", benchPlainRead)
	b.Run("client=fhir", benchClientRead)
}

// benchServer starts a FHIR server and returns its base URL, a token for
// it, and an HTTP client of its own that sends the token.
func benchServer(b *testing.B) (base string, hc *http.Client) {
	ehr := smarttest.NewServer(smarttest.Options{})
	b.Cleanup(ehr.Close)
	tok, err := ehr.IssueAccessToken("app", "patient/*.rs", smarttest.LaunchContext{Patient: "pat-1"})
	if err != nil {
		b.Fatal(err)
	}
	hc = &http.Client{Transport: bearer{tok, http.DefaultTransport.(*http.Transport).Clone()}}
	b.Cleanup(hc.CloseIdleConnections)
	return ehr.FHIRBaseURL(), hc
}

// bearer adds a fixed bearer token.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (t bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return t.next.RoundTrip(r)
}

func benchClientRead(b *testing.B) {
	base, hc := benchServer(b)
	c, err := fhir.NewClient(base, hc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		var p fhirPatient
		if err := c.Read(ctx, "Patient/pat-1", &p); err != nil || p.ID != "pat-1" {
			b.Fatalf("Read = %+v, %v", p, err)
		}
	}
}

func benchPlainRead(b *testing.B) {
	base, hc := benchServer(b)
	ctx := context.Background()
	url := base + "/Patient/pat-1"
	b.ReportAllocs()
	for b.Loop() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Accept", "application/fhir+json")
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET = %d, %v", resp.StatusCode, err)
		}
		var p fhirPatient
		if err := json.Unmarshal(body, &p); err != nil || p.ID != "pat-1" {
			b.Fatalf("decode = %+v, %v", p, err)
		}
	}
}
