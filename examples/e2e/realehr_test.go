package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/internal/browsertest"
)

// An example pointed at an EHR of the test's own by flags: -issuer,
// -client-id, -scope and -insecure-http, with each client authentication.
// The flow runs by HTTP: the EHR's launch URL, then redirects in a browser
// with a cookie jar, to the app page of the launched patient. No sandbox runs.
func TestRealEHR(t *testing.T) {
	const scope = "launch openid fhirUser patient/*.read"
	auths := []struct {
		name   string
		client func(t *testing.T) (smarttest.Client, []string, []string) // client, flags, environment
	}{
		{"client_secret_basic", func(t *testing.T) (smarttest.Client, []string, []string) {
			c := smarttest.Client{ID: "e2e-secret", Auth: smarttest.AuthClientSecretBasic, Secret: "e2e-s3cret"}
			return c, nil, []string{"SMART_CLIENT_SECRET=" + c.Secret}
		}},
		{"private_key_jwt ES384", func(t *testing.T) (smarttest.Client, []string, []string) {
			key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			c := smarttest.Client{ID: "e2e-ec", Auth: smarttest.AuthPrivateKeyJWT, PublicKey: key.Public()}
			return c, []string{"-private-key", writeKey(t, key), "-kid", "ec-1"}, nil // ES384, from the key
		}},
		{"private_key_jwt RS384", func(t *testing.T) (smarttest.Client, []string, []string) {
			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			c := smarttest.Client{ID: "e2e-rsa", Auth: smarttest.AuthPrivateKeyJWT, PublicKey: key.Public()}
			return c, []string{"-private-key", writeKey(t, key), "-kid", "rsa-1"}, nil // RS384, from the key
		}},
	}
	for _, name := range examples {
		for _, auth := range auths {
			t.Run(name+"/"+auth.name, func(t *testing.T) {
				t.Parallel()
				ehr := smarttest.NewServer(smarttest.Options{})
				t.Cleanup(ehr.Close)
				client, flags, env := auth.client(t)
				ehr.RegisterClient(client)

				// The environment names another scope; the flag wins.
				env = append(env, "SMART_SCOPE=launch openid")
				ex := start(t, name, env, append([]string{
					"-issuer", ehr.FHIRBaseURL(),
					"-client-id", client.ID,
					"-scope", scope,
					"-insecure-http",
				}, flags...)...)
				if ex.OpenURL != "" || strings.Contains(ex.out.String(), "sandbox") {
					t.Fatalf("the sandbox runs although -issuer is given:\n%s", ex.out.String())
				}

				b := newHTTPBrowser(t)
				launch := ehr.EHRLaunchURL(ex.LaunchURL, smarttest.LaunchContext{
					Patient: "pat-3", Encounter: "enc-4", FHIRUser: "Practitioner/prac-2",
				})
				final, err := browsertest.Launch(t.Context(), b.client, launch)
				if err != nil {
					t.Fatal(err)
				}
				page, _ := b.get(t, final.String(), http.StatusOK)
				if final.Path != "/fhir/" || final.Query().Get("launch_handle") == "" {
					t.Errorf("landed on %s; want /fhir/ with a launch_handle", final)
				}
				for _, want := range []string{`<h1 id="patient-name">Maria Garcia</h1>`, "Robert Lee", "Encounter/enc-4", "Body temperature", "Seasonal allergic rhinitis"} {
					if !strings.Contains(page, want) {
						t.Errorf("the app page lacks %q", want)
					}
				}

				handle := "?launch_handle=" + final.Query().Get("launch_handle")
				body, _ := b.get(t, ex.BaseURL+"/fhir/api/context"+handle, http.StatusOK)
				var lc struct {
					Issuer  string `json:"iss"`
					Patient string `json:"patient"`
					Scope   string `json:"scope"`
				}
				if err := json.Unmarshal([]byte(body), &lc); err != nil {
					t.Fatalf("/fhir/api/context: %v\n%s", err, body)
				}
				if lc.Issuer != ehr.FHIRBaseURL() || lc.Patient != "pat-3" || lc.Scope != scope {
					t.Errorf("/fhir/api/context = %+v; want the EHR, pat-3 and scope %q", lc, scope)
				}
				body, _ = b.get(t, ex.BaseURL+"/fhir/api/patient"+handle, http.StatusOK)
				if !strings.Contains(strings.Join(strings.Fields(body), ""), `"id":"pat-3"`) {
					t.Errorf("/fhir/api/patient is not pat-3:\n%s", body)
				}

				// A logout form lands on the app page, which has no launch
				// any more.
				if loc := b.postForm(t, ex.BaseURL+"/fhir/logout", http.StatusSeeOther); loc != ex.BaseURL+"/fhir/" {
					t.Errorf("logout sent the browser to %q, want %s/fhir/", loc, ex.BaseURL)
				}
				if body, _ := b.getJSON(t, ex.BaseURL+"/fhir/"+handle, http.StatusUnauthorized); !strings.Contains(body, `"error":"no_launch"`) {
					t.Errorf("the app page after logout = %s; want the no_launch error", body)
				}
			})
		}
	}
}

// The routes every example has, with the same paths: /healthz without a
// session, and the app's JSON routes answering 401 without a launch.
func TestRoutes(t *testing.T) {
	for _, name := range examples {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ex := start(t, name, nil)
			b := newHTTPBrowser(t)
			body, _ := b.get(t, ex.BaseURL+"/healthz", http.StatusOK)
			if body != "ok\n" {
				t.Errorf("/healthz = %q", body)
			}
			if b.client.Jar.Cookies(mustURL(t, ex.BaseURL)) != nil {
				t.Errorf("/healthz set a cookie")
			}
			for _, path := range []string{"/fhir/", "/fhir/api/context", "/fhir/api/patient"} {
				body, _ := b.getJSON(t, ex.BaseURL+path, http.StatusUnauthorized)
				if !strings.Contains(body, `"error":"no_launch"`) {
					t.Errorf("%s without a launch = %s; want the no_launch error", path, body)
				}
			}
			// The sandbox's launch links point at the example's launch URL.
			page, _ := b.get(t, ex.OpenURL, http.StatusOK)
			if !strings.Contains(page, `href="`+ex.BaseURL+`/fhir/launch?iss=`) {
				t.Errorf("the sandbox EHR page does not link to %s/fhir/launch:\n%s", ex.BaseURL, page)
			}
		})
	}
}

// writeKey writes key as a PKCS#8 PEM file and returns its path.
func writeKey(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// httpBrowser is a browser (browsertest's, which follows no redirect) that
// checks the status of each answer.
type httpBrowser struct {
	client *http.Client
}

func newHTTPBrowser(t *testing.T) *httpBrowser {
	c := browsertest.New()
	t.Cleanup(c.CloseIdleConnections)
	return &httpBrowser{client: c}
}

func (b *httpBrowser) get(t *testing.T, u string, status int) (string, *url.URL) {
	return b.do(t, u, "", status)
}

func (b *httpBrowser) getJSON(t *testing.T, u string, status int) (string, *url.URL) {
	return b.do(t, u, "application/json", status)
}

func (b *httpBrowser) do(t *testing.T, u, accept string, status int) (string, *url.URL) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %s, want %d\n%s", resp.Request.URL, resp.Status, status, body)
	}
	return string(body), resp.Request.URL
}

// postForm posts an empty form to u, as a form's button does, checks the
// answer's status and returns its Location.
func (b *httpBrowser) postForm(t *testing.T, u string, status int) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("POST %s: %s, want %d\n%s", resp.Request.URL, resp.Status, status, body)
	}
	return resp.Header.Get("Location")
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
