package core_test

import (
	"context"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// An EHR whose access tokens live less than the leeway (one minute) must
// not make every request refresh: such a token is used for the first half
// of its life.
func TestShortLivedTokensAreUsed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, smarttest.Options{AccessTokenLifetime: 40 * time.Second}, smarttest.Client{}, core.Config{}, core.Issuer{})
	res := h.complete("b", &pat1)
	for range 5 {
		rc, err := h.eng.Ready(context.Background(), "b", res.Handle())
		if err != nil {
			t.Fatal(err)
		}
		var p struct{ ID string }
		if err := readPatient(context.Background(), rc, &p); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.ehr.Count(smarttest.EndpointTokenRefresh); n != 0 {
		t.Fatalf("%d refreshes of a fresh 40 s token", n)
	}
	h.clock.Advance(25 * time.Second) // past half its life: refresh ahead of expiry
	rc, err := h.eng.Ready(context.Background(), "b", res.Handle())
	if err != nil {
		t.Fatal(err)
	}
	if n := h.ehr.Count(smarttest.EndpointTokenRefresh); n != 1 {
		t.Fatalf("%d refreshes after half the token's life, want 1", n)
	}
	// The new token is fresh: a read uses it as it is.
	var p struct{ ID string }
	if err := readPatient(context.Background(), rc, &p); err != nil {
		t.Fatal(err)
	}
	if n := h.ehr.Count(smarttest.EndpointTokenRefresh); n != 1 {
		t.Fatalf("%d refreshes after a read with the refreshed token, want 1", n)
	}
}
