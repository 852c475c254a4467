package attacks

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// pollForPatient has the attacker load the app page with its cookie, from
// four goroutines, until stop is closed, and counts the answers that show
// patient.
func pollForPatient(e *env, attacker *browser, patient string, stop <-chan struct{}) (seen *atomic.Int32, done func()) {
	seen = &atomic.Int32{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, e.url("/fhir/"), nil)
				resp, err := attacker.client.Do(req)
				if err != nil {
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(body), `"`+patient+`"`) {
					seen.Add(1)
				}
			}
		})
	}
	return seen, wg.Wait
}

// A fixation attacker polls the app page with the token it planted while
// the victim's callback runs: the session token is renewed before the
// launch is stored, so not one answer shows the victim's patient.
func TestFixationTokenNeverSeesTheLaunch(t *testing.T) {
	t.Parallel()
	for round := range 15 {
		e := newEnv(t, setup{})
		attacker, victim := plantedSession(t, e)
		cb := victim.toCallback(e.launchURL("pat-1"))
		stop := make(chan struct{})
		seen, wait := pollForPatient(e, attacker, "pat-1", stop)
		time.Sleep(10 * time.Millisecond)
		r := victim.get(cb.String())
		time.Sleep(10 * time.Millisecond)
		close(stop)
		wait()
		if r.StatusCode != http.StatusFound {
			t.Fatalf("round %d: the victim's callback: %d %s", round, r.StatusCode, r.body)
		}
		if n := seen.Load(); n > 0 {
			t.Fatalf("round %d: the planted token read the victim's patient %d times", round, n)
		}
	}
}

// The attacker finishes a launch of its own in the planted session first,
// so it holds a live cookie of that session and the old token forwards as
// the attacker's user; the victim's callback then comes through the
// forward. The user is checked before anything is stored: the victim gets
// 401, and the attacker's polls never see the victim's patient.
func TestForwardNeverStoresAnotherUsersLaunch(t *testing.T) {
	t.Parallel()
	for round := range 15 {
		e := newEnv(t, setup{})
		attacker, victim := plantedSession(t, e)
		own := e.ehr.NewLaunch(smarttest.LaunchContext{Patient: "pat-2", FHIRUser: "Practitioner/prac-2"})
		cbA := attacker.toCallback(e.url("/fhir/launch?iss=" + url.QueryEscape(e.iss) + "&launch=" + url.QueryEscape(own)))
		cbV := victim.toCallback(e.launchURL("pat-1"))
		if r := attacker.get(cbA.String()); r.StatusCode != http.StatusFound {
			t.Fatalf("the attacker's callback: %d %s", r.StatusCode, r.body)
		}
		stop := make(chan struct{})
		seen, wait := pollForPatient(e, attacker, "pat-1", stop)
		time.Sleep(10 * time.Millisecond)
		r := victim.get(cbV.String())
		time.Sleep(10 * time.Millisecond)
		close(stop)
		wait()
		if r.StatusCode != http.StatusUnauthorized {
			t.Errorf("round %d: the victim's callback through the attacker's forward: %d, want 401", round, r.StatusCode)
		}
		if n := seen.Load(); n > 0 {
			t.Fatalf("round %d: the attacker read the victim's patient %d times through its live cookie", round, n)
		}
	}
}

// Whoever can read the store (a replica, a backup, an administrator) finds
// no session token to present as a cookie: scs keeps each session under a
// hash of its token.
func TestStoreReaderFindsNoSessionToken(t *testing.T) {
	t.Parallel()
	key := core.Secret(base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32))))
	e := newEnv(t, setup{cfg: func(e *env, c *adapters.Config) { c.StoreKeys = []core.Secret{key} }})
	victim := e.browser()
	victim.complete("pat-1")
	app, _ := url.Parse(e.app.URL)
	name := victim.client.Jar.Cookies(app)[0].Name
	all, err := e.store.All()
	if err != nil {
		t.Fatal(err)
	}
	tried := 0
	for k, v := range all {
		if strings.HasPrefix(k, "smart:") {
			if strings.Contains(string(v), "pat-1") {
				t.Errorf("a sealed record shows the patient")
			}
			continue
		}
		tried++
		thief := e.browser()
		thief.client.Jar.SetCookies(app, []*http.Cookie{{Name: name, Value: k, Path: "/"}})
		if r := thief.get(e.url("/fhir/")); strings.Contains(r.body, `"pat-1"`) {
			t.Errorf("a key of the store, presented as the cookie, reads the victim's patient")
		}
	}
	if tried == 0 {
		t.Fatal("no scs session in the store")
	}
}
