package core_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// BenchmarkLaunch measures Launch with the issuer's discovery cached: state,
// nonce and PKCE generation, one storage write, the authorize URL.
func BenchmarkLaunch(b *testing.B) {
	h := newHarness(b, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	iss := h.ehr.FHIRBaseURL()
	if _, err := h.eng.Launch(context.Background(), "b", iss, "launch-id"); err != nil { // warm the discovery cache
		b.Fatal(err)
	}
	before := h.ehr.Count(smarttest.EndpointDiscovery)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.eng.Launch(context.Background(), "b", iss, "launch-id"); err != nil {
			b.Fatal(err)
		}
	}
	if h.ehr.Count(smarttest.EndpointDiscovery) != before {
		b.Fatal("Launch made a discovery request with the cache warm")
	}
}

// BenchmarkCallback measures Callback against the in-process smarttest: the
// code exchange over loopback HTTP, id_token verification, storage writes;
// idtoken=no is the same without openid in the scope. Their difference
// includes smarttest signing the id_token in the same process;
// BenchmarkVerifyIDToken measures the verification alone.
func BenchmarkCallback(b *testing.B) {
	b.Run("idtoken=no", func(b *testing.B) { benchCallback(b, "launch patient/*.read offline_access") })
	b.Run("idtoken=yes", func(b *testing.B) { benchCallback(b, "launch openid fhirUser patient/*.read offline_access") })
}

func benchCallback(b *testing.B, scope string) {
	h := newHarness(b, smarttest.Options{}, smarttest.Client{}, core.Config{Scope: scope}, core.Issuer{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		cb := h.launch("b", &pat1)
		i++
		b.StartTimer()
		if _, err := h.eng.Callback(context.Background(), "b", cb); err != nil {
			b.Fatal(fmt.Errorf("iteration %d: %w", i, err))
		}
	}
}

// BenchmarkReady measures Ready with a fresh token: one index read, one
// launch record read and decode, no network.
func BenchmarkReady(b *testing.B) {
	h := newHarness(b, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
	res := h.complete("b", &pat1)
	fhirBefore, tokenBefore := h.ehr.Count(smarttest.EndpointFHIR), h.ehr.Count(smarttest.EndpointToken)
	b.ReportAllocs()
	for b.Loop() {
		rc, err := h.eng.Ready(context.Background(), "b", res.Handle())
		if err != nil || rc.Patient().ID != "pat-1" {
			b.Fatal(err)
		}
	}
	if h.ehr.Count(smarttest.EndpointFHIR) != fhirBefore || h.ehr.Count(smarttest.EndpointToken) != tokenBefore {
		b.Fatal("Ready made a network call with a fresh token")
	}
}
