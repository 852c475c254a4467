package core

import (
	"context"
	"testing"
	"time"

	"github.com/fhirware/smart/core/smarttest"
)

// BenchmarkVerifyIDToken measures the engine's id_token check alone
// (signature against the cached JWKS, iss, aud, exp, nonce): the part of
// BenchmarkCallback/idtoken=yes that is the app's own cost.
func BenchmarkVerifyIDToken(b *testing.B) {
	ehr := smarttest.NewServer(smarttest.Options{})
	b.Cleanup(ehr.Close)
	e, err := New(Config{ClientID: "app", CallbackURL: "https://app.test/cb",
		Issuers: []Issuer{{URL: ehr.FHIRBaseURL()}}, AllowInsecureHTTP: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	as, err := e.server(ctx, "bench", e.issuers[ehr.FHIRBaseURL()])
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	raw, err := ehr.SignIDToken(map[string]any{"iss": ehr.AuthIssuer(), "aud": "app", "sub": "u1",
		"nonce": "n", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "fhirUser": "Practitioner/prac-1"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.verifyIDToken(ctx, "bench", as, raw, "n"); err != nil { // fetches the JWKS once
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.verifyIDToken(ctx, "bench", as, raw, "n"); err != nil {
			b.Fatal(err)
		}
	}
}
