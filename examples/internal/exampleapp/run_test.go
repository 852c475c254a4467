package exampleapp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/internal/browsertest"
)

// mountNetHTTP is a Mount on net/http alone, for the tests of this package;
// the examples' own mounts are tested through their programs in
// examples/e2e.
func mountNetHTTP(cfg adapters.Config, app *App) (http.Handler, error) {
	s, err := adapters.New(cfg)
	if err != nil {
		return nil, err
	}
	routes := http.NewServeMux()
	routes.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		app.Page(w, r, adapters.FromContext(r.Context()), func(path string) string { return adapters.URL(r, path) })
	})
	routes.HandleFunc("GET /api/context", func(w http.ResponseWriter, r *http.Request) {
		app.JSON(w, adapters.FromContext(r.Context()).LaunchContext())
	})
	routes.HandleFunc("GET /api/patient", func(w http.ResponseWriter, r *http.Request) {
		rc := adapters.FromContext(r.Context())
		var patient json.RawMessage
		if err := rc.FHIR().Read(r.Context(), rc.Patient().String(), &patient); err != nil {
			adapters.Error(w, r, err)
			return
		}
		app.JSON(w, patient)
	})
	mux := http.NewServeMux()
	mux.Handle("/fhir/", http.StripPrefix("/fhir", s.Handler(routes)))
	mux.HandleFunc("GET /healthz", Healthz)
	return mux, nil
}

// output is the writer Run logs to; it reports the URL to open.
type output struct {
	mu   sync.Mutex
	b    strings.Builder
	open chan string
	once sync.Once
}

var openRE = regexp.MustCompile(`Open (\S+) and click`)

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b.Write(p)
	if m := openRE.FindStringSubmatch(o.b.String()); m != nil {
		o.once.Do(func() { o.open <- m[1] })
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// runSandbox runs Run with the sandbox and args until the test ends, and
// returns the sandbox EHR's URL.
func runSandbox(t *testing.T, args ...string) (string, *output) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &output{open: make(chan string, 1)}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, "nethttp", mountNetHTTP, append([]string{"-addr", "127.0.0.1:0"}, args...), env(nil), out)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case u := <-out.open:
		return u, out
	case err := <-done:
		t.Fatalf("Run ended before serving: %v\n%s", err, out)
	case <-time.After(20 * time.Second):
		t.Fatalf("Run printed no URL:\n%s", out)
	}
	return "", nil
}

var launchLink = regexp.MustCompile(`id="launch-pat-2" href="([^"]+)"`)

// launchFromSandbox follows the sandbox's "Launch app" link for pat-2 in
// a browser, and returns the app page.
func launchFromSandbox(t *testing.T, ehrURL string) string {
	t.Helper()
	_, _, page := launchInBrowser(t, ehrURL)
	return page
}

// launchInBrowser is launchFromSandbox in a new browser, which it returns
// with the app page's URL and the page.
func launchInBrowser(t *testing.T, ehrURL string) (*http.Client, *url.URL, string) {
	t.Helper()
	c := browsertest.New()
	t.Cleanup(c.CloseIdleConnections)
	ehrPage := get(t, c, ehrURL)
	m := launchLink.FindStringSubmatch(ehrPage)
	if m == nil {
		t.Fatalf("no launch link on the sandbox page:\n%s", ehrPage)
	}
	page, err := browsertest.Launch(t.Context(), c, strings.ReplaceAll(m[1], "&amp;", "&"))
	if err != nil {
		t.Fatal(err)
	}
	return c, page, get(t, c, page.String())
}

var observationDate = regexp.MustCompile(`<tr><td>(\d{4}-\d\d-\d\d \d\d:\d\d)</td>`)

// observationDates returns the dates of the app page's observations, in
// the order the page lists them.
func observationDates(page string) []string {
	_, table, _ := strings.Cut(page, `<table id="observations">`)
	table, _, _ = strings.Cut(table, "</table>")
	var dates []string
	for _, m := range observationDate.FindAllStringSubmatch(table, -1) {
		dates = append(dates, m[1])
	}
	return dates
}

// logout posts the app page's logout as a form would, and checks that it
// lands on the app page, which then has no launch.
func logout(t *testing.T, c *http.Client, page *url.URL) {
	t.Helper()
	resp, err := c.PostForm(page.ResolveReference(&url.URL{Path: "/fhir/logout"}).String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != page.Scheme+"://"+page.Host+"/fhir/" {
		t.Errorf("logout: %s to %q, want 303 to the app page", resp.Status, resp.Header.Get("Location"))
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, page.String(), nil)
	req.Header.Set("Accept", "application/json")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"no_launch"`) {
		t.Errorf("the app page after logout: %s %s, want 401 no_launch", resp.Status, body)
	}
}

func get(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", u, resp.Status, b)
	}
	return string(b)
}

// The app runs with each session store: memory, and Redis and PostgreSQL
// when SMART_TEST_REDIS_ADDR and SMART_TEST_POSTGRES_URL name servers
// (they skip otherwise, and fail under CI=true), with the lock of the
// same server.
func TestRunWithEachStore(t *testing.T) {
	for _, tc := range []struct{ name, env, prefix, locker string }{
		{"memory", "", "memory", "none"},
		{"redis", "SMART_TEST_REDIS_ADDR", "redis://", "goredislock"},
		{"postgres", "SMART_TEST_POSTGRES_URL", "", "pgxlock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := tc.prefix
			if tc.env != "" {
				v := os.Getenv(tc.env)
				if v == "" {
					if os.Getenv("CI") == "true" {
						t.Fatalf("%s is not set", tc.env)
					}
					t.Skipf("%s is not set", tc.env)
				}
				store += v
			}
			ehr, out := runSandbox(t, "-store", store)
			c, pageURL, page := launchInBrowser(t, ehr)
			if !strings.Contains(page, `<h1 id="patient-name">Daniel Adams</h1>`) || !strings.Contains(page, "Type 2 diabetes mellitus") {
				t.Errorf("the app page does not show pat-2:\n%s", page)
			}
			// pat-2's five observations, newest first, as the server
			// sorted them.
			want := []string{"2024-04-20 11:46", "2024-04-20 11:45", "2024-04-20 11:02", "2024-04-20 11:01", "2024-04-20 11:00"}
			if got := observationDates(page); !slices.Equal(got, want) {
				t.Errorf("the page's observations are dated %q, want %q", got, want)
			}
			logout(t, c, pageURL)
			for _, want := range []string{storeName(store), "locker=" + tc.locker} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("the startup log lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// With -private-key the app publishes its public key at JWKSPath, the
// sandbox registers it by that URL, and a private_key_jwt launch works.
func TestRunPrivateKeyJWKS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	ehr, out := runSandbox(t, "-private-key", keyFile, "-kid", "example-2026")
	c, pageURL, page := launchInBrowser(t, ehr)
	if !strings.Contains(page, `<h1 id="patient-name">Daniel Adams</h1>`) {
		t.Errorf("the app page does not show pat-2:\n%s", page)
	}
	if !strings.Contains(out.String(), "client_auth=private_key_jwt") {
		t.Errorf("the startup log does not say private_key_jwt:\n%s", out)
	}

	resp, err := c.Get(pageURL.Scheme + "://" + pageURL.Host + JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/jwk-set+json" ||
		resp.Header.Get("Cache-Control") != "public, max-age=3600" {
		t.Errorf("GET %s: %s, Content-Type %q, Cache-Control %q", JWKSPath, resp.Status,
			resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("%d keys, want 1", len(set.Keys))
	}
	k := set.Keys[0]
	if k.KeyID != "example-2026" || k.Algorithm != "ES384" || k.Use != "sig" || !k.IsPublic() {
		t.Errorf("key: kid %q, alg %q, use %q, public %t; want example-2026, ES384, sig, public", k.KeyID, k.Algorithm, k.Use, k.IsPublic())
	}
	if pub, ok := k.Key.(*ecdsa.PublicKey); !ok || !pub.Equal(key.Public()) {
		t.Error("the published key is not the -private-key's public key")
	}
}

// Without -private-key there is nothing to publish.
func TestRunNoJWKSWithoutPrivateKey(t *testing.T) {
	ehr, _ := runSandbox(t)
	c, pageURL, _ := launchInBrowser(t, ehr)
	resp, err := c.Get(pageURL.Scheme + "://" + pageURL.Host + JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET %s without -private-key: %s, want 404", JWKSPath, resp.Status)
	}
}

// The startup log says that the sandbox switches plain http on, and the
// URL to open is printed on its own line.
func TestRunSandboxLog(t *testing.T) {
	_, out := runSandbox(t)
	for _, want := range []string{"AllowInsecureHTTP", "CookieInsecureHTTP", "\nOpen http://127.0.0.1:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunFailsAtStart(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		usage bool
	}{
		{[]string{"-store", "mysql://db/x"}, false},
		{[]string{"-store", "redis://127.0.0.1:1"}, false},
		{[]string{"-addr", "127.0.0.1:-1"}, false},
		{[]string{"-issuer", "http://ehr.example/fhir", "-client-id", "x"}, false}, // http without -insecure-http
		{[]string{"-issuer", "https://ehr.example/fhir"}, true},
		{[]string{"-base-url", "app.example"}, true},
	} {
		err := Run(t.Context(), "test", mountNetHTTP, tc.args, env(nil), io.Discard)
		if err == nil {
			t.Errorf("%q: no error", tc.args)
			continue
		}
		if usage := errors.As(err, new(*usageError)); usage != tc.usage {
			t.Errorf("%q: %v; usage error %t, want %t", tc.args, err, usage, tc.usage)
		}
	}
	if err := Run(t.Context(), "test", mountNetHTTP, []string{"-help"}, env(nil), io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-help: %v", err)
	}
}
