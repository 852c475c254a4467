package attacks

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core/smarttest"
)

// slowFindStore is the env's memstore with every read of a pending launch
// answered 50 ms late, so that concurrent callbacks all read before any of
// them deletes: the window a store round trip opens in production.
type slowFindStore struct{ scs.Store }

func (s slowFindStore) Find(token string) ([]byte, bool, error) {
	b, ok, err := s.Store.Find(token)
	if strings.HasPrefix(token, "smart:pending:") {
		time.Sleep(50 * time.Millisecond)
	}
	return b, ok, err
}

// stateReplayedInFlight sends one callback (same code and state, same
// browser) six times at once: exactly one finishes the launch and makes a
// token request; the others find no pending launch.
var stateReplayedInFlight = attack{
	name: "state_replayed_in_flight",
	setup: setup{cfg: func(e *env, c *adapters.Config) {
		c.SessionManager.Store = slowFindStore{e.store}
	}},
	status: 302, stored: 1,
	do: func(t *testing.T, e *env) *response {
		b := e.browser()
		cb := b.toCallback(e.launchURL("pat-1")).String()
		const n = 6
		answers := make([]*response, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { answers[i] = b.get(cb) })
		}
		wg.Wait()
		var won *response
		for _, r := range answers {
			switch {
			case r.StatusCode == http.StatusFound && won == nil:
				won = r
			case r.StatusCode == http.StatusFound:
				t.Errorf("a second callback finished the launch")
			case r.StatusCode != http.StatusBadRequest || r.errorCode() != "invalid_state":
				t.Errorf("a replayed callback got %d %s, want 400 invalid_state", r.StatusCode, r.errorCode())
			}
		}
		if won == nil {
			t.Fatal("no callback finished the launch")
		}
		return won
	},
	check: func(t *testing.T, e *env, r *response) {
		if n := e.ehr.Count(smarttest.EndpointTokenCode); n != 1 {
			t.Errorf("%d code exchanges, want 1", n)
		}
	},
}

// stateFromAnotherBrowserKeepsTheLaunch: someone who learned a victim's
// state and sends the callback from a browser session of their own gets
// invalid_state, and the victim's launch is not burnt: its own callback
// still finishes.
var stateFromAnotherBrowserKeepsTheLaunch = attack{
	name:   "state_from_another_browser_keeps_the_launch",
	status: http.StatusFound, stored: 1,
	do: func(t *testing.T, e *env) *response {
		victim := e.browser()
		cb := victim.toCallback(e.launchURL("pat-1"))
		attacker := e.browser()
		attacker.get(e.launchURL("pat-2"))
		if r := attacker.get(cb.String()); r.StatusCode != http.StatusBadRequest || r.errorCode() != "invalid_state" {
			t.Errorf("the callback from another browser: %d %s, want 400 invalid_state", r.StatusCode, r.errorCode())
		}
		return victim.get(cb.String())
	},
}
