package multiinstance_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/sessions/storagetest"
)

// A launch starts on instance A, its callback lands on B, and the app's
// pages, served in turn by A, B and C, all find the launch.
func TestLaunchAcrossInstances(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		c := newCluster(t, be, clusterOptions{})
		authorize, onLaunch := c.launchStart("pat-2")
		handle, onCallback := c.callback(c.authorize(authorize))
		if onLaunch != "A" || onCallback != "B" {
			t.Fatalf("launch on %s, callback on %s; want A then B", onLaunch, onCallback)
		}
		var served []string
		for i := range 9 {
			u := c.pageURL(handle)
			if i%3 == 2 {
				u = c.pageURL("") // no handle: the most recent launch
			}
			res := c.mustGet(u, http.StatusOK)
			if !strings.HasPrefix(res.body, "patient=pat-2 handle="+handle) {
				t.Fatalf("page on %s: %q", res.instance, res.body)
			}
			served = append(served, res.instance)
		}
		if got := strings.Join(served, ""); got != "CABCABCAB" {
			t.Fatalf("pages served by %s; want CABCABCAB", got)
		}
		// A discovered at the launch and B at the callback, each for
		// its own cache; C served pages with no call to the EHR but
		// the FHIR reads.
		if n := c.ehr.Count(smarttest.EndpointDiscovery); n != 2 {
			t.Errorf("%d discoveries; want 2 (A and B, one each)", n)
		}
	})
}

// One browser opens ten patients in ten tabs: the launches, the EHR's
// approvals and the callbacks interleave, on whichever instance, and each
// tab's handle reads only its own patient.
func TestTenTabs(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		c := newCluster(t, be, clusterOptions{})
		first := c.launch("pat-1")
		c.mustGet(c.pageURL(first), http.StatusOK) // a FHIR request, whose token creates patients
		patients := append([]string{"pat-2", "pat-3"}, c.createPatients(8)...)

		// Ten tabs: every launch starts before any is approved, the
		// approvals come back in another order, the callbacks in a third.
		authorizes := make([]string, len(patients))
		for i, p := range patients {
			authorizes[i], _ = c.launchStart(p)
		}
		callbacks := make([]string, len(patients))
		for _, i := range rand.Perm(len(patients)) {
			callbacks[i] = c.authorize(authorizes[i])
		}
		handles := map[string]string{} // handle -> patient
		var last string
		for _, i := range rand.Perm(len(patients)) {
			h, _ := c.callback(callbacks[i])
			handles[h] = patients[i]
			last = patients[i]
		}
		if len(handles) != len(patients) {
			t.Fatalf("%d distinct handles for %d launches", len(handles), len(patients))
		}

		// The tabs, used in random order, twice over.
		for range 2 {
			for h, p := range shuffled(handles) {
				res := c.mustGet(c.pageURL(h), http.StatusOK)
				if want := "patient=" + p + " handle=" + h; res.body != want {
					t.Fatalf("tab of %s on %s: %q, want %q", p, res.instance, res.body, want)
				}
			}
		}
		// A request without a handle gets the most recent launch.
		if res := c.mustGet(c.pageURL(""), http.StatusOK); !strings.HasPrefix(res.body, "patient="+last+" ") {
			t.Fatalf("without a handle: %q, want the last launch's patient %s", res.body, last)
		}
		// The first launch was the eleventh: MaxLaunches (10) evicted it.
		c.mustGet(c.pageURL(first), http.StatusUnauthorized)
	})
}

func shuffled(m map[string]string) map[string]string { return m } // map order is random already

// Three instances, fifty requests each at once, on a launch whose access
// token has expired: the EHR sees one refresh, and every request succeeds.
func TestConcurrentRefresh(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		for _, tc := range []struct {
			name   string
			expire func(c *cluster)
		}{
			// The clock passes the token's expiry: Ready refreshes.
			{"Expired", func(c *cluster) { c.clock.Advance(10 * time.Minute) }},
			// The EHR revokes the token early: the FHIR read gets 401
			// and refreshes.
			{"Refused", func(c *cluster) { c.ehr.ExpireAccessTokens() }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				c := newCluster(t, be, clusterOptions{})
				h := c.launch("pat-1")
				c.mustGet(c.pageURL(h), http.StatusOK)
				c.ehr.ResetCounts()
				tc.expire(c)
				if failures := c.hammer(h, 3*50); len(failures) > 0 {
					t.Fatalf("%d of 150 requests failed; first: %s", len(failures), failures[0])
				}
				if n := c.ehr.Count(smarttest.EndpointTokenRefresh); n != 1 {
					t.Fatalf("%d refreshes; want 1", n)
				}
			})
		}
	})
}

// Under strict rotation an old refresh token revokes the grant. Hundreds
// of requests over many refresh cycles, across instances: none fails, so
// no instance ever refreshed with a rotated token.
func TestStrictRotation(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		c := newCluster(t, be, clusterOptions{faults: smarttest.Faults{StrictRotation: true}})
		h := c.launch("pat-3")
		c.ehr.ResetCounts()
		const cycles, perCycle = 12, 30
		for cycle := range cycles {
			if cycle%2 == 0 {
				c.clock.Advance(10 * time.Minute) // expired: refreshed by Ready
			} else {
				c.ehr.ExpireAccessTokens() // refused: refreshed after a 401
			}
			if failures := c.hammer(h, perCycle); len(failures) > 0 {
				t.Fatalf("cycle %d: %d of %d requests failed; first: %s", cycle, len(failures), perCycle, failures[0])
			}
		}
		if n := c.ehr.Count(smarttest.EndpointTokenRefresh); n != cycles {
			t.Fatalf("%d refreshes in %d cycles; want one each", n, cycles)
		}
		if f := c.ehr.Count(smarttest.EndpointFHIR); f < cycles*perCycle {
			t.Fatalf("%d FHIR requests; want at least %d", f, cycles*perCycle)
		}
	})
}

// An instance dies in the middle of a refresh, holding the lock: the lock
// runs out after RefreshLockTTL and another instance refreshes.
func TestHolderDiesDuringRefresh(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		for _, tc := range []struct {
			name  string
			after time.Duration // between the death and the next request
		}{
			// The request waits for the whole of the lock's time, and
			// still has the time to refresh.
			{"NextRequestAtOnce", 0},
			{"NextRequestLater", time.Second},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				testHolderDies(t, be, tc.after)
			})
		}
	})
}

func testHolderDies(t *testing.T, be backend, after time.Duration) {
	const ttl = 2 * time.Second
	c := newCluster(t, be, clusterOptions{refreshLockTTL: ttl})
	h := c.launch("pat-1")
	sid := c.sessionID()
	c.ehr.ResetCounts()
	c.clock.Advance(10 * time.Minute)

	// The dying instance takes the lock with its Locker, as the engine
	// names it (core's refreshLockKey), and never releases it.
	dead := c.insts[2].locks
	start := time.Now()
	storagetest.MustLock(t, dead, "lock:refresh:"+sid+":"+h, ttl)
	time.Sleep(after)

	res := c.mustGet(c.pageURL(h), http.StatusOK)
	if waited := time.Since(start); waited < ttl-200*time.Millisecond {
		t.Fatalf("instance %s refreshed after %v, while the dead holder's lock was still held", res.instance, waited)
	}
	if n := c.ehr.Count(smarttest.EndpointTokenRefresh); n != 1 {
		t.Fatalf("%d refreshes; want 1", n)
	}
	if failures := c.hammer(h, 30); len(failures) > 0 {
		t.Fatalf("%d requests failed after the refresh; first: %s", len(failures), failures[0])
	}
}

// Twelve tabs of one browser finish their callbacks at the same moment,
// spread over the three instances. Each callback reads the session's list
// of launches and writes it back with its own launch added; the list keeps
// all twelve only if the instances take turns, through the Locker. The
// list is what a logout ends: a launch it lost would outlive the logout.
// The engines are driven directly, so that nothing but the store and the
// lock stands between the callbacks. Without the Locker a round loses
// launches more often than not; three rounds, each a browser session of
// its own, make a miss unlikely.
func TestConcurrentCallbacksAcrossInstances(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		const tabs = 12
		c := newCluster(t, be, clusterOptions{maxLaunches: tabs})
		for round := range 3 {
			c.finishTabsAtOnce(fmt.Sprintf("browser-%d", round), tabs) // its keys are under the test's prefix
		}
	})
}

// finishTabsAtOnce starts n launches in the browser session sid, on A, B
// and C in turn, has the EHR approve them, then runs their callbacks at
// once, each on the instance after its launch's. Every instance then finds
// every launch, and after a logout on one of them none finds any: the
// session's list, which the logout ends, held all n.
func (c *cluster) finishTabsAtOnce(sid string, n int) {
	t := c.t
	t.Helper()
	ctx := t.Context()

	callbacks := make([]url.Values, n)
	for i := range callbacks {
		launch := c.ehr.NewLaunch(smarttest.LaunchContext{Patient: "pat-1"})
		authorize, err := c.insts[i%len(c.insts)].engine.Launch(ctx, sid, c.ehr.FHIRBaseURL(), launch)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(c.authorize(authorize))
		if err != nil {
			t.Fatal(err)
		}
		callbacks[i] = u.Query()
	}

	start := make(chan struct{})
	handles := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, q := range callbacks {
		inst := c.insts[(i+1)%len(c.insts)]
		wg.Go(func() {
			<-start
			rc, err := inst.engine.Callback(ctx, sid, core.CallbackRequest{Query: q})
			if err != nil {
				errs[i] = err
				return
			}
			handles[i] = rc.Handle()
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: callback %d on %s: %v", sid, i, c.insts[(i+1)%len(c.insts)].name, err)
		}
	}
	if distinct := slices.Compact(slices.Sorted(slices.Values(handles))); len(distinct) != n {
		t.Fatalf("%s: %d distinct handles for %d launches", sid, len(distinct), n)
	}

	for _, inst := range c.insts {
		for i, h := range handles {
			if _, err := inst.engine.Ready(ctx, sid, h); err != nil {
				t.Fatalf("%s: launch %d on instance %s: %v", sid, i, inst.name, err)
			}
		}
	}
	if err := c.insts[0].engine.Logout(ctx, sid); err != nil {
		t.Fatal(err)
	}
	for _, inst := range c.insts {
		for i, h := range handles {
			if _, err := inst.engine.Ready(ctx, sid, h); !errors.Is(err, core.CodeNoLaunch) {
				t.Fatalf("%s: launch %d on instance %s after the logout: %v; want no_launch (the session's list lost it)", sid, i, inst.name, err)
			}
		}
	}
}
