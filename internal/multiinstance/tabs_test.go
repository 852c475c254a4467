package multiinstance_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/fhirware/smart/adapters"
)

// One browser, ten tabs whose callbacks leave with the same cookie: the
// first to finish renews it (against session fixation), and the others,
// still carrying the old one, finish through its forward, on whichever
// instance. Every launch is usable, each with its own patient, and the
// old cookie alone still sees nothing.
func TestTabsFinishTogether(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		c := newCluster(t, be, clusterOptions{})
		c.launch("pat-1")
		c.mustGet(c.pageURL(""), http.StatusOK) // a FHIR request, whose token creates patients
		patients := c.createPatients(10)
		for _, tc := range []struct {
			name string
			// first callbacks finish before the others are sent.
			first int
		}{
			{name: "all released at once", first: 0},
			{name: "one finished first", first: 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c.t = t
				c.newBrowser()
				c.tabsFinishTogether(patients, tc.first)
			})
		}
	})
}

// tabsFinishTogether launches one tab per patient, has the EHR approve
// them all, then sends their callbacks with the cookie the browser had
// then: first of them one after the other, the rest at the same moment.
func (c *cluster) tabsFinishTogether(patients []string, first int) {
	t := c.t
	t.Helper()
	callbacks := make([]string, len(patients))
	for i, p := range patients {
		a, _ := c.launchStart(p)
		callbacks[i] = c.authorize(a)
	}
	app, _ := url.Parse(c.proxy.URL + "/fhir/")
	old := c.browser.Jar.Cookies(app)
	if len(old) != 1 {
		t.Fatalf("the browser has %d cookies, want its session's", len(old))
	}

	// The tabs' requests carry the old cookie whatever the others set.
	tab := &http.Client{
		Transport:     c.browser.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	type answer struct {
		status   int
		location string
		cookies  []*http.Cookie
		instance string
		err      error
	}
	answers := make([]answer, len(callbacks))
	send := func(i int) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, callbacks[i], nil)
		req.AddCookie(old[0])
		res, err := tab.Do(req)
		if err != nil {
			answers[i].err = err
			return
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		answers[i] = answer{res.StatusCode, res.Header.Get("Location"), res.Cookies(), res.Header.Get("X-Instance"), nil}
		if res.StatusCode != http.StatusFound {
			answers[i].err = fmt.Errorf("%d %q", res.StatusCode, body)
		}
	}
	for i := range first {
		send(i)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := first; i < len(callbacks); i++ {
		wg.Go(func() {
			<-start
			send(i)
		})
	}
	close(start)
	wg.Wait()

	handles := map[string]string{} // handle -> patient
	for i, a := range answers {
		if a.err != nil {
			t.Fatalf("tab %d's callback on %s: %v", i, a.instance, a.err)
		}
		u, err := url.Parse(a.location)
		h := u.Query().Get(adapters.HandleParam)
		if err != nil || h == "" {
			t.Fatalf("tab %d's callback redirected to %q", i, a.location)
		}
		var renewed bool
		for _, ck := range a.cookies {
			renewed = renewed || (ck.Name == old[0].Name && ck.Value != "" && ck.Value != old[0].Value)
		}
		if !renewed {
			t.Fatalf("tab %d's callback on %s set no new session cookie: %v", i, a.instance, a.cookies)
		}
		handles[h] = patients[i]
		c.browser.Jar.SetCookies(app, a.cookies) // the browser keeps the last
	}
	if len(handles) != len(patients) {
		t.Fatalf("%d distinct handles for %d launches", len(handles), len(patients))
	}
	for h, p := range handles {
		res := c.mustGet(c.pageURL(h), http.StatusOK)
		if want := "patient=" + p + " handle=" + h; res.body != want {
			t.Fatalf("tab of %s on %s: %q, want %q", p, res.instance, res.body, want)
		}
	}

	// The old cookie names no session: no launch, and no new cookie.
	for h := range handles {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, c.pageURL(h), nil)
		req.AddCookie(old[0])
		res, err := tab.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized || len(res.Cookies()) != 0 {
			t.Fatalf("the old cookie on %s: %d, cookies %v; want 401 and none", res.Header.Get("X-Instance"), res.StatusCode, res.Cookies())
		}
	}
}
