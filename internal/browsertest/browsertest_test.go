package browsertest_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/internal/browsertest"
	"github.com/fhirware/smart/sessions"
)

// newApp starts a fake EHR and an app, mounted at /fhir, whose page
// writes the launch's patient; it returns the EHR and the app's URL.
func newApp(t *testing.T) (*smarttest.Server, string) {
	t.Helper()
	ehr := smarttest.NewServer(smarttest.Options{})
	t.Cleanup(ehr.Close)
	ehr.RegisterClient(smarttest.Client{ID: "app"})
	app := httptest.NewUnstartedServer(nil)
	t.Cleanup(app.Close)
	base := "http://" + app.Listener.Addr().String()
	s, err := adapters.New(adapters.Config{
		Config: core.Config{
			ClientID:          "app",
			CallbackURL:       base + "/fhir/callback",
			Issuers:           []core.Issuer{{URL: ehr.FHIRBaseURL()}},
			AllowInsecureHTTP: true,
		},
		RedirectURL: base + "/fhir/",
		Cookies:     sessions.CookieInsecureHTTP,
	})
	if err != nil {
		t.Fatal(err)
	}
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "patient "+adapters.FromContext(r.Context()).Patient().ID)
	})
	mux := http.NewServeMux()
	mux.Handle("/fhir/", http.StripPrefix("/fhir", s.Handler(page)))
	app.Config.Handler = mux
	app.Start()
	return ehr, base
}

// Launch lands on the app page's URL, with a handle, and leaves the
// session cookie in the jar, whether the client follows redirects (a
// plain client with a jar) or not (New's): the page then shows the
// launch's patient.
func TestLaunch(t *testing.T) {
	t.Parallel()
	ehr, base := newApp(t)
	jar, _ := cookiejar.New(nil)
	for name, c := range map[string]*http.Client{"New": browsertest.New(), "following": {Jar: jar}} {
		t.Run(name, func(t *testing.T) {
			t.Cleanup(c.CloseIdleConnections)
			page, err := browsertest.Launch(t.Context(), c, ehr.EHRLaunchURL(base+"/fhir/launch", smarttest.LaunchContext{Patient: "pat-2"}))
			if err != nil {
				t.Fatal(err)
			}
			if page.Path != "/fhir/" || page.Query().Get(adapters.HandleParam) == "" {
				t.Fatalf("Launch returned %s; want the app page with a launch handle", page)
			}
			resp, err := c.Get(page.String())
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != "patient pat-2" {
				t.Fatalf("the app page: %d %q; want the launch's patient", resp.StatusCode, body)
			}
		})
	}
}

// A launch the app refuses (an issuer it does not know) is an error that
// names the status and path, and not the launch id in the query.
func TestLaunchRefused(t *testing.T) {
	t.Parallel()
	_, base := newApp(t)
	c := browsertest.New()
	t.Cleanup(c.CloseIdleConnections)
	page, err := browsertest.Launch(t.Context(), c, base+"/fhir/launch?iss=https://elsewhere.example/fhir&launch=secret-launch-id")
	if err == nil {
		t.Fatalf("Launch = %s; want an error", page)
	}
	if !regexp.MustCompile(`/fhir/launch: 4\d\d `).MatchString(err.Error()) || strings.Contains(err.Error(), "secret-launch-id") {
		t.Fatalf("error %q; want the path and a 4xx status, without the query", err)
	}
}

// A Fresh browser shares the connections but not the cookies: the page of
// a launch made in the first is no page of the second's.
func TestFresh(t *testing.T) {
	t.Parallel()
	ehr, base := newApp(t)
	c := browsertest.New()
	t.Cleanup(c.CloseIdleConnections)
	page, err := browsertest.Launch(t.Context(), c, ehr.EHRLaunchURL(base+"/fhir/launch", smarttest.LaunchContext{Patient: "pat-1"}))
	if err != nil {
		t.Fatal(err)
	}
	fresh := browsertest.Fresh(c)
	if fresh.Transport != c.Transport || len(fresh.Jar.Cookies(page)) != 0 || len(c.Jar.Cookies(page)) == 0 {
		t.Fatalf("Fresh: same transport %v, %d cookies (the first browser: %d); want the transport and no cookie",
			fresh.Transport == c.Transport, len(fresh.Jar.Cookies(page)), len(c.Jar.Cookies(page)))
	}
	for _, b := range []struct {
		c    *http.Client
		want int
	}{{c, http.StatusOK}, {fresh, http.StatusUnauthorized}} {
		resp, err := b.c.Get(page.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != b.want {
			t.Errorf("the page of the launch: %d, want %d", resp.StatusCode, b.want)
		}
	}
}
