package core_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sync"
	"testing"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// cookieRecorder remembers the Cookie headers of the requests it sends.
type cookieRecorder struct {
	mu      sync.Mutex
	cookies []string
}

func (c *cookieRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if v := req.Header.Get("Cookie"); v != "" {
		c.cookies = append(c.cookies, v)
	}
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// A cookie jar on Config.HTTPClient is not used: the engine's requests
// (discovery, token, FHIR) are every user's, and a cookie an EHR set for
// one user must never go out with another's.
func TestHTTPClientJarIsDropped(t *testing.T) {
	t.Parallel()
	rec := &cookieRecorder{}
	jar, _ := cookiejar.New(nil)
	h := newHarness(t, smarttest.Options{}, smarttest.Client{},
		core.Config{HTTPClient: &http.Client{Jar: jar, Transport: rec}}, core.Issuer{})
	u, _ := url.Parse(h.ehr.URL())
	jar.SetCookies(u, []*http.Cookie{{Name: "ehr_session", Value: "another-users-session", Path: "/"}})

	rc := h.complete("browser-1", &smarttest.LaunchContext{Patient: "pat-1"})
	var p struct{ ID string }
	if err := rc.FHIR().Read(context.Background(), rc.Patient().String(), &p); err != nil || p.ID != "pat-1" {
		t.Fatalf("read the patient: %+v, %v", p, err)
	}
	if len(rec.cookies) != 0 {
		t.Errorf("the engine sent the jar's cookies to the EHR: %q", rec.cookies)
	}
}
