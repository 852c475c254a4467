package multiinstance_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core/smarttest"
)

// A callback replayed 20 times at once, with the same code and state,
// spread over the three instances: exactly one token request reaches the
// EHR, one callback finishes the launch, and that launch keeps working
// (its page reads the patient). The pending launch is taken with a Get and
// a Delete under the Locker, so the instances take turns; the store
// answers each read of a pending launch late, so that without the Locker
// every instance would read it before any deletes it.
func TestCallbackReplayedAcrossInstances(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		replayCallback(t, newCluster(t, be, clusterOptions{}))
	})
}

func replayCallback(t *testing.T, c *cluster) {
	const replays = 20
	callback := c.authorize(func() string { a, _ := c.launchStart("pat-1"); return a }())
	before := c.ehr.Count(smarttest.EndpointTokenCode)
	for _, inst := range c.insts {
		inst.store.slowPending.Store(true)
	}

	start := make(chan struct{})
	var (
		mu        sync.Mutex
		handles   []string
		instances = map[string]int{}
		failures  []string
		wg        sync.WaitGroup
	)
	for range replays {
		wg.Go(func() {
			<-start
			res, err := c.get(t.Context(), callback)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures = append(failures, err.Error())
				return
			}
			instances[res.instance]++
			if res.status != http.StatusFound {
				return // refused: the launch is another callback's
			}
			u, err := url.Parse(res.location)
			if err != nil || u.Query().Get(adapters.HandleParam) == "" {
				failures = append(failures, "redirected to "+res.location)
				return
			}
			handles = append(handles, u.Query().Get(adapters.HandleParam))
		})
	}
	close(start)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	if len(instances) != len(instanceNames) {
		t.Errorf("the callbacks reached instances %v; want all of %v", instances, instanceNames)
	}
	if n := c.ehr.Count(smarttest.EndpointTokenCode) - before; n != 1 {
		t.Fatalf("%d callbacks with one code and state made %d token requests; want 1", replays, n)
	}
	if len(handles) != 1 {
		t.Fatalf("%d callbacks finished the launch; want 1", len(handles))
	}
	res := c.mustGet(c.pageURL(handles[0]), http.StatusOK)
	if !strings.HasPrefix(res.body, "patient=pat-1 ") {
		t.Fatalf("the launch's page: %q", res.body)
	}
}
