package smarttest

import (
	"io"
	"net/http"
	"net/http/cookiejar"
)

// Browse gets rawURL as a browser would, following redirects and keeping
// cookies in a jar of its own, and returns the final response's status and
// body. Point it at [Server.EHRLaunchURL] to run a whole EHR launch of an
// app in a test: the app's launch route, the EHR's authorize endpoint, the
// app's callback, and the app page it redirects to.
func Browse(rawURL string) (status int, body string, err error) {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Jar: jar, Transport: tr}).Get(rawURL)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
