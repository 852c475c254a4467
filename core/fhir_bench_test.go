package core_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// The two benchmarks make the same read of the same in-process FHIR server
// (smarttest on httptest, over loopback HTTP) and decode it into the same
// struct: once through the ReadyClient's FHIR client (fresh token, origin
// check, header copy, size cap), once with a plain http.Client and a fixed
// bearer header. Their difference is what the ReadyClient costs. The names are key=value
// pairs so that benchstat puts them side by side: benchstat -col /client.
func BenchmarkFHIRRead(b *testing.B) {
	b.Run("client=plain", benchPlainClientRead)
	b.Run("client=ReadyClient", benchReadyClientRead)
}

func benchReadyClientRead(b *testing.B) {
	env := launchForFHIR(b, fhirSetup{quiet: true})
	ctx := context.Background()
	rc := env.rc
	b.ReportAllocs()
	for b.Loop() {
		var p fhirPatient
		if err := rc.FHIR().Read(ctx, "Patient/pat-1", &p); err != nil || p.ID != "pat-1" {
			b.Fatalf("Read = %+v, %v", p, err)
		}
	}
}

func benchPlainClientRead(b *testing.B) {
	env := launchForFHIR(b, fhirSetup{quiet: true})
	ctx := context.Background()
	var p fhirPatient
	if err := env.rc.FHIR().Read(ctx, "Patient/pat-1", &p); err != nil {
		b.Fatal(err)
	}
	tokens := env.ehr.FHIRTokens()
	bearer := "Bearer " + tokens[len(tokens)-1]
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	b.Cleanup(client.CloseIdleConnections)
	url := env.base + "/Patient/pat-1"
	b.ReportAllocs()
	for b.Loop() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", bearer)
		req.Header.Set("Accept", "application/fhir+json")
		resp, err := client.Do(req)
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
