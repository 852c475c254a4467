package smarttest_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/fhirware/smart/core/smarttest"
)

// postRevoke posts a revocation request and returns its status.
func postRevoke(t *testing.T, s *smarttest.Server, form url.Values, user, pass string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.RevocationURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func revokeForm(tok, hint, client string) url.Values {
	f := url.Values{"token": {tok}, "token_type_hint": {hint}}
	if client != "" {
		f.Set("client_id", client)
	}
	return f
}

// The revocation endpoint is advertised, authenticates the client, and
// revokes: a refresh token's whole grant, or one access token.
func TestRevoke(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	var conf struct {
		RevocationEndpoint string `json:"revocation_endpoint"`
	}
	getJSON(t, s.FHIRBaseURL()+"/.well-known/smart-configuration", &conf)
	if conf.RevocationEndpoint != s.RevocationURL() {
		t.Errorf("revocation_endpoint %q, want %q", conf.RevocationEndpoint, s.RevocationURL())
	}

	tok := login(t, s)
	at, rt := str(tok["access_token"]), str(tok["refresh_token"])
	s.RegisterClient(smarttest.Client{ID: "other"})
	for _, c := range []struct {
		name string
		form url.Values
		want int
	}{
		{"unknown client", revokeForm(at, "access_token", "nobody"), http.StatusUnauthorized},
		{"another client's token", revokeForm(at, "access_token", "other"), http.StatusBadRequest},
		{"no token", revokeForm("", "", "app"), http.StatusBadRequest},
	} {
		if got := postRevoke(t, s, c.form, "", ""); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	if resp, _ := fhir(t, s, at, "GET", "/Patient/pat-1", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the access token after refused revocations: %d, want 200", resp.StatusCode)
	}

	// An access token alone: it 401s, the refresh token still works.
	if got := postRevoke(t, s, revokeForm(at, "access_token", "app"), "", ""); got != http.StatusOK {
		t.Fatalf("revoking the access token: %d", got)
	}
	if resp, _ := fhir(t, s, at, "GET", "/Patient/pat-1", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the revoked access token: %d, want 401", resp.StatusCode)
	}
	status, next := postToken(t, s, refreshForm(rt), "", "")
	if status != http.StatusOK {
		t.Fatalf("a refresh after the access token's revocation: %d %v", status, next)
	}

	// The refresh token: the grant ends, with its access tokens.
	if got := postRevoke(t, s, revokeForm(rt, "refresh_token", "app"), "", ""); got != http.StatusOK {
		t.Fatalf("revoking the refresh token: %d", got)
	}
	if status, body := postToken(t, s, refreshForm(rt), "", ""); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("the revoked refresh token: %d %v, want 400 invalid_grant", status, body)
	}
	if resp, _ := fhir(t, s, str(next["access_token"]), "GET", "/Patient/pat-1", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("an access token of the revoked grant: %d, want 401", resp.StatusCode)
	}

	// Unknown and revoked tokens are answered 200 (RFC 7009 section 2.2).
	for _, tok := range []string{"made-up", rt} {
		if got := postRevoke(t, s, revokeForm(tok, "", "app"), "", ""); got != http.StatusOK {
			t.Errorf("revoking an unknown or revoked token: %d, want 200", got)
		}
	}
	if got := s.Count(smarttest.EndpointRevoke); got != 7 {
		t.Errorf("Count(EndpointRevoke) = %d, want 7", got)
	}
	// Requests whose client did not authenticate, or without a token, are not listed.
	if got, want := s.RevokedTokens(), []string{at, at, rt, "made-up", rt}; !slices.Equal(got, want) {
		t.Errorf("RevokedTokens() has %d tokens, want %d in order", len(got), len(want))
	}
}

// A confidential client authenticates at the revocation endpoint as at the
// token endpoint; Faults.Status makes the endpoint fail.
func TestRevokeClientAuthAndFaults(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{NoRevocationEndpoint: true})
	var conf map[string]any
	getJSON(t, s.FHIRBaseURL()+"/.well-known/smart-configuration", &conf)
	if _, ok := conf["revocation_endpoint"]; ok {
		t.Error("NoRevocationEndpoint: the smart-configuration still has revocation_endpoint")
	}
	s.RegisterClient(smarttest.Client{ID: "conf", Auth: smarttest.AuthClientSecretBasic, Secret: "pw"})
	if got := postRevoke(t, s, revokeForm("x", "", ""), "conf", "wrong"); got != http.StatusUnauthorized {
		t.Errorf("a wrong secret: %d, want 401", got)
	}
	if got := postRevoke(t, s, revokeForm("x", "", ""), "conf", "pw"); got != http.StatusOK {
		t.Errorf("the right secret: %d, want 200", got)
	}
	s.SetFaults(smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointRevoke: 503}})
	if got := postRevoke(t, s, revokeForm("x", "", ""), "conf", "pw"); got != http.StatusServiceUnavailable {
		t.Errorf("with Faults.Status 503: %d", got)
	}
}
