package smarttest_test

import (
	"net/http"
	"testing"

	"github.com/fhirware/smart/core/smarttest"
)

// A token from IssueAccessToken reads FHIR resources as one from the token
// endpoint does, and stops working when the server expires its tokens.
func TestIssueAccessToken(t *testing.T) {
	t.Parallel()
	s := smarttest.NewServer(smarttest.Options{})
	t.Cleanup(s.Close)
	tok, err := s.IssueAccessToken("app", "patient/*.rs", smarttest.LaunchContext{Patient: "pat-1"})
	if err != nil || tok == "" {
		t.Fatalf("IssueAccessToken = %q, %v", tok, err)
	}
	get := func() int {
		req, _ := http.NewRequest(http.MethodGet, s.FHIRBaseURL()+"/Patient/pat-1", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(); got != http.StatusOK {
		t.Fatalf("GET Patient/pat-1 with the issued token: %d, want 200", got)
	}
	if got := s.FHIRTokens(); len(got) != 1 || got[0] != tok {
		t.Errorf("FHIRTokens = %v, want the issued token", got)
	}
	s.ExpireAccessTokens()
	if got := get(); got != http.StatusUnauthorized {
		t.Errorf("GET with the expired token: %d, want 401", got)
	}

	unstarted := smarttest.NewUnstarted(smarttest.Options{})
	if _, err := unstarted.IssueAccessToken("app", "", smarttest.LaunchContext{}); err == nil {
		t.Error("IssueAccessToken on an unstarted server did not fail")
	}
}
