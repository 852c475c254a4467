// Package browsertest is the browser of our tests, benchmarks and load
// program: an *http.Client with a cookie jar of its own, and the EHR launch
// most of them begin with.
//
//	b := browsertest.New()
//	t.Cleanup(b.CloseIdleConnections)
//	page, err := browsertest.Launch(ctx, b, ehr.EHRLaunchURL(app.URL+"/fhir/launch", lc))
//	// page is the app page's URL, with its launch handle; b holds the session cookie
//
// [Launch] works with any *http.Client (smarttest's own browser too): it
// follows the redirects itself, with the client's jar and transport.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"time"

	"github.com/fhirware/smart/adapters"
)

// New returns a browser that follows no redirect by itself, so that its
// caller sees every response: an *http.Client with a cookie jar and a
// transport of its own, and a timeout of 30 seconds on each request. The
// transport keeps up to 200 idle connections to each host, so that many
// requests at once reuse them. Call its CloseIdleConnections when done.
func New() *http.Client {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &http.Client{
		Jar:           jar,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 200},
		Timeout:       30 * time.Second,
		CheckRedirect: stop,
	}
}

// Fresh returns a copy of c with an empty cookie jar: another browser
// session over c's transport, whose connections it reuses. Close the
// idle connections through c.
func Fresh(c *http.Client) *http.Client {
	fresh := *c
	fresh.Jar, _ = cookiejar.New(nil)
	return &fresh
}

// stop is the CheckRedirect of a browser that follows no redirect.
func stop(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// maxRedirects bounds the redirects Launch follows.
const maxRedirects = 10

// Launch runs an EHR launch with c: it opens launchURL (the app's launch
// URL as the EHR opens it, from smarttest's EHRLaunchURL, say) and follows
// the redirects through the EHR's authorize endpoint and the app's
// callback to the app page, and returns that page's URL, which carries the
// launch handle (adapters.HandleParam), without requesting it. The session
// cookie is in c's jar.
//
// It follows the redirects itself whatever c's CheckRedirect, and fails
// on any answer that is not a redirect before it reaches the app page. Its
// errors name the status and path of the answer, never its query (which
// holds the code and state).
func Launch(ctx context.Context, c *http.Client, launchURL string) (*url.URL, error) {
	hop := *c
	hop.CheckRedirect = stop
	u, err := url.Parse(launchURL)
	if err != nil {
		return nil, fmt.Errorf("browsertest: the launch URL: %w", err)
	}
	for range maxRedirects {
		next, err := redirect(ctx, &hop, u)
		if err != nil {
			return nil, err
		}
		if next.Query().Get(adapters.HandleParam) != "" {
			return next, nil
		}
		u = next
	}
	return nil, fmt.Errorf("browsertest: no app page after %d redirects", maxRedirects)
}

// redirect gets u with c and returns where its answer, a redirect, points.
func redirect(ctx context.Context, c *http.Client, u *url.URL) (*url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		err = ue.Err // without the URL and its query
	}
	if err != nil {
		return nil, fmt.Errorf("browsertest: GET %s%s: %w", u.Host, u.Path, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	// Read to the end, so that the connection is kept for the next step (a
	// redirect's page, with the authorize URL in it, runs past 300 bytes).
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	loc, err := resp.Location()
	if resp.StatusCode/100 != 3 || err != nil {
		return nil, fmt.Errorf("browsertest: GET %s%s: %s, want a redirect; body: %s", u.Host, u.Path, resp.Status, body)
	}
	return loc, nil
}
