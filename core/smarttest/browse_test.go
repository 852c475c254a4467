package smarttest_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fhirware/smart/core/smarttest"
)

// TestBrowseContinuesInTheSameBrowser: a browser from NewBrowser keeps the
// cookies one Browse got for the next; a nil browser starts without any.
func TestBrowseContinuesInTheSameBrowser(t *testing.T) {
	t.Parallel()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login":
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "s1", Path: "/"})
			http.Redirect(w, r, "/page", http.StatusFound)
		case "/page":
			c, err := r.Cookie("session")
			if err != nil {
				http.Error(w, "no session", http.StatusUnauthorized)
				return
			}
			w.Write([]byte("session " + c.Value))
		}
	}))
	t.Cleanup(app.Close)

	browser := smarttest.NewBrowser()
	t.Cleanup(browser.CloseIdleConnections)
	for _, path := range []string{"/login", "/page"} {
		status, body, err := smarttest.Browse(browser, app.URL+path)
		if err != nil || status != http.StatusOK || body != "session s1" {
			t.Errorf("%s in the same browser: %d %q %v", path, status, body, err)
		}
	}
	if status, _, err := smarttest.Browse(nil, app.URL+"/page"); err != nil || status != http.StatusUnauthorized {
		t.Errorf("/page in a new browser: %d %v, want 401", status, err)
	}
	if status, body, err := smarttest.Browse(nil, app.URL+"/login"); err != nil || status != http.StatusOK || body != "session s1" {
		t.Errorf("/login in a new browser: %d %q %v", status, body, err)
	}
}
