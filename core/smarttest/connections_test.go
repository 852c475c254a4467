package smarttest_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/fhirware/smart/core/smarttest"
)

// Connections counts connections, not requests: a client that keeps its
// connection alive adds one, a client that does not adds one per request.
func TestConnectionsCountsNewConnections(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	get := func(c *http.Client) {
		t.Helper()
		resp, err := c.Get(s.FHIRBaseURL() + "/metadata")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	kept := &http.Client{Transport: &http.Transport{}}
	defer kept.CloseIdleConnections()
	for range 5 {
		get(kept)
	}
	if got := s.Connections(); got != 1 {
		t.Errorf("5 requests over one kept-alive connection: Connections() = %d, want 1", got)
	}

	closed := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range 3 {
		get(closed)
	}
	if got := s.Connections(); got != 4 {
		t.Errorf("then 3 requests without keep-alive: Connections() = %d, want 4", got)
	}

	s.ResetCounts()
	if got := s.Connections(); got != 4 {
		t.Errorf("after ResetCounts: Connections() = %d, want 4 (it counts since the server started)", got)
	}
}
