package smarttest_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/fhirware/smart/core/smarttest"
)

func refreshForm(rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"app"}}
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	tok := login(t, s)
	rt := str(tok["refresh_token"])
	first, err := verifyIDToken(t, s, str(tok["id_token"]))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		status, next := postToken(t, s, refreshForm(rt), "", "")
		if status != http.StatusOK {
			t.Fatalf("refresh %d: %d %v", i, status, next)
		}
		if next["refresh_token"] != rt {
			t.Errorf("refresh %d: refresh token changed without StrictRotation", i)
		}
		if next["access_token"] == tok["access_token"] {
			t.Errorf("refresh %d: same access token", i)
		}
		claims, err := verifyIDToken(t, s, str(next["id_token"]))
		if err != nil {
			t.Fatalf("refresh %d: id_token: %v", i, err)
		}
		if claims["iss"] != first["iss"] || claims["sub"] != first["sub"] {
			t.Errorf("refresh %d: id_token iss/sub %v/%v, want %v/%v", i, claims["iss"], claims["sub"], first["iss"], first["sub"])
		}
		if resp, _ := fhir(t, s, str(next["access_token"]), "GET", "/Patient/pat-1", nil); resp.StatusCode != 200 {
			t.Errorf("refresh %d: new access token: status %d", i, resp.StatusCode)
		}
	}
	if s.Count(smarttest.EndpointTokenRefresh) != 2 || s.Count(smarttest.EndpointTokenCode) != 1 || s.Count(smarttest.EndpointToken) != 3 {
		t.Errorf("counts: refresh %d, code %d, token %d", s.Count(smarttest.EndpointTokenRefresh),
			s.Count(smarttest.EndpointTokenCode), s.Count(smarttest.EndpointToken))
	}

	// Another client can't use the refresh token.
	s.RegisterClient(smarttest.Client{ID: "thief"})
	f := refreshForm(rt)
	f.Set("client_id", "thief")
	if status, body := postToken(t, s, f, "", ""); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("refresh by another client: %d %v", status, body)
	}
	if status, body := postToken(t, s, refreshForm("made-up"), "", ""); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("unknown refresh token: %d %v", status, body)
	}
}

func TestRefreshStrictRotation(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	s.SetFaults(smarttest.Faults{StrictRotation: true})
	tok := login(t, s)
	rt1 := str(tok["refresh_token"])

	status, next := postToken(t, s, refreshForm(rt1), "", "")
	if status != 200 {
		t.Fatalf("refresh: %d %v", status, next)
	}
	rt2, at2 := str(next["refresh_token"]), str(next["access_token"])
	if rt2 == "" || rt2 == rt1 {
		t.Fatalf("refresh token not rotated: %q", rt2)
	}
	if resp, _ := fhir(t, s, at2, "GET", "/Patient/pat-1", nil); resp.StatusCode != 200 {
		t.Fatalf("rotated grant's access token: %d", resp.StatusCode)
	}

	// The old refresh token comes back: the whole grant is revoked.
	if status, body := postToken(t, s, refreshForm(rt1), "", ""); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("reuse of rotated token: %d %v", status, body)
	}
	if resp, _ := fhir(t, s, at2, "GET", "/Patient/pat-1", nil); resp.StatusCode != 401 {
		t.Errorf("access token of a revoked grant: %d, want 401", resp.StatusCode)
	}
	if status, _ := postToken(t, s, refreshForm(rt2), "", ""); status != 400 {
		t.Errorf("current refresh token of a revoked grant: %d, want 400", status)
	}
}

func TestRefreshAfterExpiry(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	tok := login(t, s)
	at := str(tok["access_token"])
	if resp, _ := fhir(t, s, at, "GET", "/Patient/pat-1", nil); resp.StatusCode != 200 {
		t.Fatalf("fresh token: %d", resp.StatusCode)
	}
	s.ExpireAccessTokens()
	resp, oo := fhir(t, s, at, "GET", "/Patient/pat-1", nil)
	if resp.StatusCode != 401 || oo["resourceType"] != "OperationOutcome" || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("expired token: %d %v", resp.StatusCode, oo)
	}
	_, next := postToken(t, s, refreshForm(str(tok["refresh_token"])), "", "")
	if resp, _ := fhir(t, s, str(next["access_token"]), "GET", "/Patient/pat-1", nil); resp.StatusCode != 200 {
		t.Errorf("refreshed token: %d", resp.StatusCode)
	}
	got := s.FHIRTokens()
	want := []string{at, at, str(next["access_token"])}
	if len(got) != len(want) {
		t.Fatalf("FHIRTokens = %d tokens, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("FHIRTokens[%d] differs", i)
		}
	}
}

func TestRevokeRefreshFault(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	tok := login(t, s)
	s.SetFaults(smarttest.Faults{RevokeRefresh: true})
	if status, body := postToken(t, s, refreshForm(str(tok["refresh_token"])), "", ""); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("got %d %v", status, body)
	}
	s.SetFaults(smarttest.Faults{})
	if status, body := postToken(t, s, refreshForm(str(tok["refresh_token"])), "", ""); status != 200 {
		t.Fatalf("after clearing the fault: %d %v", status, body)
	}
}
