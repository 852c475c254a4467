package smarttest_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/fhirware/smart/core/smarttest"
)

func TestEHRPage(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{AppLaunchURL: "http://app.example/launch?x=1"})
	resp, b := get(t, s.URL()+"/")
	page := string(b)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("EHR page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, p := range s.Patients() {
		if !strings.Contains(page, p.Name) || !strings.Contains(page, `id="launch-`+p.ID+`"`) {
			t.Errorf("page lacks %s (%s)", p.ID, p.Name)
		}
	}
	m := regexp.MustCompile(`<a id="launch-pat-2" href="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no launch link for pat-2")
	}
	launch, err := url.Parse(strings.ReplaceAll(m[1], "&amp;", "&"))
	if err != nil {
		t.Fatal(err)
	}
	q := launch.Query()
	if launch.Host != "app.example" || launch.Path != "/launch" || q.Get("x") != "1" || q.Get("iss") != s.FHIRBaseURL() {
		t.Fatalf("launch link %s", launch)
	}
	tok := login(t, s, "launch", q.Get("launch"))
	if tok["patient"] != "pat-2" || tok["encounter"] != "enc-3" || tok["need_patient_banner"] != true {
		t.Errorf("launch context from the EHR page: %v", tok)
	}
	claims, err := verifyIDToken(t, s, str(tok["id_token"]))
	if err != nil || claims["fhirUser"] != "Practitioner/prac-1" {
		t.Errorf("fhirUser %v (%v)", claims["fhirUser"], err)
	}
}

func TestEHRPageWithoutApp(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	_, b := get(t, s.URL()+"/")
	page := string(b)
	if !strings.Contains(page, "AppLaunchURL is empty") || strings.Contains(page, `id="launch-`) || !strings.Contains(page, "Amy Shaw") {
		t.Errorf("page without app:\n%s", page)
	}
}

func TestUnstartedHandler(t *testing.T) {
	t.Parallel()
	s := smarttest.NewUnstarted(smarttest.Options{})
	if s.URL() != "" {
		t.Errorf("URL before start = %q", s.URL())
	}
	own := httptest.NewServer(s.Handler())
	t.Cleanup(own.Close)
	var c smartConfiguration
	getJSON(t, own.URL+"/fhir/.well-known/smart-configuration", &c)
	if c.Issuer != own.URL+"/auth" || c.TokenEndpoint != own.URL+"/auth/token" {
		t.Errorf("configuration through Handler: %+v", c)
	}
}

func TestStartOn(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := smarttest.NewUnstarted(smarttest.Options{})
	s.StartOn(l)
	t.Cleanup(s.Close)
	if s.URL() != "http://"+l.Addr().String() {
		t.Errorf("URL %q, listener %s", s.URL(), l.Addr())
	}
	if resp, _ := get(t, s.JWKSURL()); resp.StatusCode != http.StatusOK {
		t.Errorf("JWKS: %d", resp.StatusCode)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	s := smarttest.NewServer(smarttest.Options{TLS: true})
	t.Cleanup(s.Close)
	if !strings.HasPrefix(s.FHIRBaseURL(), "https://") {
		t.Fatalf("FHIRBaseURL %s", s.FHIRBaseURL())
	}
	resp, err := s.Client().Get(s.FHIRBaseURL() + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("metadata over TLS: %d", resp.StatusCode)
	}
}
