package core_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

func TestConcurrentRequestsRefreshOnce(t *testing.T) {
	t.Parallel()
	for _, shared := range []bool{true, false} {
		name := "a ReadyClient per request"
		if shared {
			name = "one shared ReadyClient"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			env := launchForFHIR(t, fhirSetup{})
			env.clock.Advance(2 * time.Hour) // past the token's one hour, for the engine and the EHR
			env.ehr.ResetCounts()
			// A slow EHR keeps the refresh in flight while the others pile up.
			env.ehr.SetFaults(smarttest.Faults{Latency: 20 * time.Millisecond})

			const n = 100
			atOnce(t, n, func(i int) error {
				rc := env.rc
				if !shared {
					var err error
					if rc, err = env.eng.Ready(ctx, env.browser, env.handle); err != nil {
						return fmt.Errorf("request %d: Ready: %w", i, err)
					}
				}
				var p fhirPatient
				if err := readPatient(ctx, rc, &p); err != nil || p.ID != "pat-1" {
					return fmt.Errorf("request %d: %+v, %w", i, p, err)
				}
				return nil
			})
			if got := env.ehr.Count(smarttest.EndpointTokenRefresh); got != 1 {
				t.Errorf("%d concurrent requests made %d refreshes, want 1", n, got)
			}
			wantOneToken(t, env.ehr, n)
		})
	}
}

func TestRetryAfter401CarriesTheNewToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := launchForFHIR(t, fhirSetup{})
	env.ehr.ResetCounts()

	env.ehr.SetFaults(smarttest.Faults{Unauthorized: 1})
	var p fhirPatient
	if err := readPatient(ctx, env.rc, &p); err != nil {
		t.Fatalf("Read after one 401: %v", err)
	}
	tokens := env.ehr.FHIRTokens()
	if len(tokens) != 2 || tokens[0] == tokens[1] {
		t.Fatalf("the FHIR server saw %d tokens (same: %v), want the refused one, then a new one", len(tokens), len(tokens) == 2 && tokens[0] == tokens[1])
	}
	if n := env.ehr.Count(smarttest.EndpointTokenRefresh); n != 1 {
		t.Errorf("refreshes = %d, want 1", n)
	}

	// A write's body is sent again on the retry.
	env.ehr.SetFaults(smarttest.Faults{Unauthorized: 1})
	res, err := env.rc.FHIR().Create(ctx, "Observation", map[string]any{"resourceType": "Observation", "status": "final"})
	if err != nil || res.Status != http.StatusCreated {
		t.Fatalf("Create after one 401 = %+v, %v", res, err)
	}
	tokens = env.ehr.FHIRTokens()
	if len(tokens) != 4 || tokens[3] == tokens[2] || tokens[3] == tokens[1] {
		t.Errorf("the retried create did not carry a new token")
	}

	// A second 401 in a row, to a token just refreshed, ends the request
	// with launch_expired, so the app offers to launch again: one refresh
	// per request, no loop.
	env.ehr.ResetCounts()
	env.ehr.SetFaults(smarttest.Faults{Unauthorized: 2})
	err = readPatient(ctx, env.rc, &p)
	if !errors.Is(err, core.CodeLaunchExpired) {
		t.Errorf("two 401s in a row: %v, want launch_expired", err)
	}
	if n := env.ehr.Count(smarttest.EndpointTokenRefresh); n != 1 {
		t.Errorf("refreshes after two 401s = %d, want 1", n)
	}

	// The token another request stored meanwhile is refused too: the
	// request refreshes once of its own and retries again.
	env.ehr.SetFaults(smarttest.Faults{})
	other := env.ready(t)
	env.ehr.SetFaults(smarttest.Faults{Unauthorized: 1}) // other's read refreshes, and stores its token
	if err := readPatient(ctx, other, &p); err != nil {
		t.Fatalf("the other request's read: %v", err)
	}
	env.ehr.ExpireAccessTokens() // the token env.rc holds, and the one other stored
	env.ehr.ResetCounts()
	if err := readPatient(ctx, env.rc, &p); err != nil {
		t.Fatalf("Read when the stored token is refused too: %v", err)
	}
	if n, m := env.ehr.Count(smarttest.EndpointTokenRefresh), env.ehr.Count(smarttest.EndpointFHIR); n != 1 || m != 3 {
		t.Errorf("refreshes = %d, FHIR requests = %d; want 1 and 3 (refused, adopted and refused, refreshed)", n, m)
	}

	// A body that cannot be replayed: the 401 goes back to the caller.
	env.ehr.ResetCounts()
	env.ehr.SetFaults(smarttest.Faults{Unauthorized: 1})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, env.base+"/Observation", io.NopCloser(strings.NewReader(`{"resourceType":"Observation"}`)))
	resp, err := env.rc.FHIR().Do(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("Do with a one-shot body after a 401 = %v, %v; want the 401", resp, err)
	}
	resp.Body.Close()
	if n := env.ehr.Count(smarttest.EndpointTokenRefresh); n != 0 {
		t.Errorf("refreshes = %d, want 0", n)
	}
}

// TestRefusedTokenIsNeverHandedBack: a request whose token the FHIR server
// refused joins a refresh already in flight for another reason (a
// ReadyClient whose token merely expired), which finds the stored token
// fresh: the very token refused. The request must not retry with it, but
// refresh on its own.
func TestRefusedTokenIsNeverHandedBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := launchForFHIR(t, fhirSetup{})
	expired := env.rc // holds token A
	env.clock.Advance(2 * time.Hour)
	env.ready(t)            // the expired token is refreshed: stores token B
	refused := env.ready(t) // holds token B
	env.ehr.ExpireAccessTokens()
	env.ehr.ResetCounts()

	// The expired client's refresh stops at the storage until let go.
	entered, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	env.store.setOnGet(func(key string) {
		if strings.HasPrefix(key, "launch:") {
			once.Do(func() { close(entered); <-gate })
		}
	})
	var p1, p2 fhirPatient
	done := make(chan error)
	go func() { done <- readPatient(ctx, expired, &p1) }()
	<-entered
	go func() { done <- readPatient(ctx, refused, &p2) }()
	for env.ehr.Count(smarttest.EndpointFHIR) == 0 { // B sent and refused
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // … and its refresh joined the one in flight
	close(gate)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := env.ehr.Count(smarttest.EndpointTokenRefresh); n != 1 {
		t.Errorf("refreshes = %d, want 1", n)
	}
	// refused: B (401), C. expired: B (401, from the storage), C.
	if n := env.ehr.Count(smarttest.EndpointFHIR); n != 4 {
		t.Errorf("FHIR requests = %d, want 4: a refused token was sent again", n)
	}
}

func TestRefreshFailureEndsTheLaunch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := launchForFHIR(t, fhirSetup{})
	env.ehr.SetFaults(smarttest.Faults{RevokeRefresh: true})
	env.clock.Advance(2 * time.Hour)
	var p fhirPatient
	if err := readPatient(ctx, env.rc, &p); codeOf(err) != core.CodeRefreshFailed {
		t.Fatalf("Read with a revoked grant: %v, want refresh_failed", err)
	}
	if _, err := env.eng.Ready(ctx, env.browser, env.handle); codeOf(err) != core.CodeNoLaunch {
		t.Errorf("Ready after a refused refresh: %v, want no_launch", err)
	}
}

// TestStrictRotationNeverPresentsAStaleRefreshToken runs 1,000 requests
// over one launch, in 20 rounds of 50 on 16 workers, while the EHR rotates
// the refresh token on every refresh and revokes the grant if an old one
// comes back. In each round, while requests are in flight, the access
// token dies: the EHR expires it, or the clock passes its lifetime.
func TestStrictRotationNeverPresentsAStaleRefreshToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := launchForFHIR(t, fhirSetup{ehr: smarttest.Options{AccessTokenLifetime: 10 * time.Minute}})
	env.ehr.SetFaults(smarttest.Faults{StrictRotation: true})
	env.ehr.ResetCounts()

	const rounds, perRound, workers = 20, 50, 16
	var failed atomic.Int64
	for round := range rounds {
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				shared := env.rc // half the workers keep one ReadyClient, as a long handler would
				for {
					i := next.Add(1)
					if i > perRound {
						return
					}
					if i == perRound/5 {
						if round%2 == 0 {
							env.ehr.ExpireAccessTokens()
						} else {
							env.clock.Advance(11 * time.Minute)
						}
					}
					rc := shared
					if w%2 == 1 {
						var err error
						if rc, err = env.eng.Ready(ctx, env.browser, env.handle); err != nil {
							t.Errorf("round %d, request %d: Ready: %v", round, i, err)
							failed.Add(1)
							continue
						}
					}
					var p fhirPatient
					if err := readPatient(ctx, rc, &p); err != nil {
						t.Errorf("round %d, request %d: %v", round, i, err)
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed", n, rounds*perRound)
	}
	if n := env.ehr.Count(smarttest.EndpointTokenRefresh); n != rounds {
		t.Errorf("%d refreshes for %d dead tokens, want one each", n, rounds)
	}
	var p fhirPatient
	if err := readPatient(ctx, env.ready(t), &p); err != nil {
		t.Errorf("after the run: %v; the grant was revoked", err)
	}
}
