package multiinstance_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirware/smart/core/smarttest"
)

// The costs the deployment guide quotes, measured on the real servers and
// kept from growing: the bytes one launch stores, and the store round
// trips of a request on the ready path (token fresh) and of one that
// refreshes. Run with -v to see them.
func TestMeasure(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		c := newCluster(t, be, clusterOptions{})
		a, b := c.insts[0], c.insts[1]

		// Bytes: what core writes for one launch, seen by the counting
		// store (the pending launch is deleted at the callback), and what
		// is left in the server, read back by key (STRLEN in Redis,
		// length(data) in PostgreSQL).
		authorize, _ := c.launchStart("pat-1")
		pending := a.store.writes()["pending"]
		h, _ := c.callback(c.authorize(authorize))
		written := b.store.writes()
		stored := be.recordBytes(t, c.prefix)
		var lines []string
		total := 0
		for k, n := range stored {
			kind, _, _ := strings.Cut(k, ":")
			lines = append(lines, fmt.Sprintf("%s %d B", kind, n))
			total += n
		}
		slices.Sort(lines)
		t.Logf("one launch: pending launch %v B (deleted at the callback); stored: %s = %d B; scs session %v B",
			pending, strings.Join(lines, ", "), total, written["scs session"])
		if len(stored) != 4 || total > 4096 {
			t.Errorf("one launch stores %d records, %d B; want 4 (launch, index, the list of pending launches until it expires, the renewed session token's forward for 30 s), at most 4 KiB", len(stored), total)
		}

		// Round trips on the ready path, pinned to instance C, which has
		// not served this browser yet (its caches hold nothing of it).
		for _, tc := range []struct {
			name       string
			url        string
			want, lock int64
		}{
			{"with a handle", c.pageURL(h, "read", "no"), 2, 0},
			{"without a handle", c.pageURL("", "read", "no"), 3, 0},
		} {
			inst := c.insts[2]
			inst.store.reset()
			inst.locks.calls.Store(0)
			c.mustGet(tc.url, http.StatusOK, "X-Pin-Instance", inst.name)
			n := inst.store.counts()
			got := int64(n["find"] + n["commit"] + n["delete"])
			t.Logf("ready path %s: %d store round trips %v, %d lock round trips", tc.name, got, n, inst.locks.calls.Load())
			if got > tc.want || inst.locks.calls.Load() != tc.lock {
				t.Errorf("ready path %s: %d store and %d lock round trips; want at most %d and %d", tc.name, got, inst.locks.calls.Load(), tc.want, tc.lock)
			}
		}

		// A request that refreshes: the lock, the launch read again under
		// it, the new tokens written, the unlock.
		c.clock.Advance(10 * time.Minute)
		inst := c.insts[2]
		inst.store.reset()
		inst.locks.calls.Store(0)
		c.ehr.ResetCounts()
		c.mustGet(c.pageURL(h, "read", "no"), http.StatusOK, "X-Pin-Instance", inst.name)
		n := inst.store.counts()
		t.Logf("a request that refreshes: %d store round trips %v, %d lock round trips, %d token requests",
			n["find"]+n["commit"]+n["delete"], n, inst.locks.calls.Load(), c.ehr.Count(smarttest.EndpointTokenRefresh))
	})
}
