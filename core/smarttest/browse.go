package smarttest

import (
	"io"
	"net/http"
	"net/http/cookiejar"
)

// NewBrowser returns an HTTP client that acts as one browser: it follows
// redirects and keeps cookies in a jar of its own. It has its own
// transport too, so its connections are not shared with other clients;
// call its CloseIdleConnections method when done. Use it with [Browse] to
// go on in the same browser after a launch, or on its own for requests
// that need the browser's cookies.
func NewBrowser() *http.Client {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &http.Client{Jar: jar, Transport: &http.Transport{}}
}

// Browse gets rawURL in browser as a browser would, following redirects
// and keeping cookies, and returns the final response's status and body.
// A nil browser is a new one ([NewBrowser]) used for this request alone.
//
// Point it at [Server.EHRLaunchURL] to run a whole EHR launch of an app
// in a test: the app's launch route, the EHR's authorize endpoint, the
// app's callback, and the app page it redirects to. To continue in the
// launched browser, pass the same client to the next call:
//
//	browser := smarttest.NewBrowser()
//	defer browser.CloseIdleConnections()
//	_, page, err := smarttest.Browse(browser, ehr.EHRLaunchURL(app.URL+"/launch", ctx))
//	…
//	status, body, err := smarttest.Browse(browser, app.URL+"/chart")
func Browse(browser *http.Client, rawURL string) (status int, body string, err error) {
	if browser == nil {
		browser = NewBrowser()
		defer browser.CloseIdleConnections()
	}
	resp, err := browser.Get(rawURL)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
