package smarttest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/fhirware/smart/core/smarttest"
)

func get(t *testing.T, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestCounts(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	tok := str(login(t, s)["access_token"])
	fhir(t, s, tok, "GET", "/Patient/pat-1", nil)
	fhir(t, s, tok, "GET", "/Observation?patient=pat-1", nil)
	get(t, s.FHIRBaseURL()+"/metadata")
	get(t, s.JWKSURL())
	get(t, s.URL()+"/")
	want := map[smarttest.Endpoint]int{
		smarttest.EndpointAuthorize: 1, smarttest.EndpointToken: 1, smarttest.EndpointTokenCode: 1,
		smarttest.EndpointTokenRefresh: 0, smarttest.EndpointFHIR: 2, smarttest.EndpointMetadata: 1,
		smarttest.EndpointJWKS: 1, smarttest.EndpointEHR: 1, smarttest.EndpointDiscovery: 0,
	}
	for e, n := range want {
		if got := s.Count(e); got != n {
			t.Errorf("Count(%s) = %d, want %d", e, got, n)
		}
	}
	s.ResetCounts()
	if s.Count(smarttest.EndpointFHIR) != 0 || s.Count(smarttest.EndpointAuthorize) != 0 {
		t.Error("ResetCounts left counts")
	}
}

func TestStatusAndFailTimes(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	s.SetFaults(smarttest.Faults{
		Status:    map[smarttest.Endpoint]int{smarttest.EndpointDiscovery: 503},
		FailTimes: map[smarttest.Endpoint]int{smarttest.EndpointMetadata: 2, smarttest.EndpointTokenCode: 1},
	})
	resp, b := get(t, s.FHIRBaseURL()+"/.well-known/smart-configuration")
	var oauthErr map[string]string
	if resp.StatusCode != 503 || json.Unmarshal(b, &oauthErr) != nil || oauthErr["error"] == "" {
		t.Errorf("Status fault: %d %s", resp.StatusCode, b)
	}
	var statuses []int
	for range 3 {
		resp, _ := get(t, s.FHIRBaseURL()+"/metadata")
		statuses = append(statuses, resp.StatusCode)
	}
	if statuses[0] != 500 || statuses[1] != 500 || statuses[2] != 200 {
		t.Errorf("FailTimes: %v, want 500 500 200", statuses)
	}

	// The code grant fails once; the code is still good afterwards.
	pk := newPKCE()
	c := code(t, s, authParams(s, "app", pk))
	if status, body := postToken(t, s, codeForm(c, pk, "client_id", "app"), "", ""); status != 500 || body["error"] != "server_error" {
		t.Errorf("token FailTimes: %d %v", status, body)
	}
	if status, body := postToken(t, s, codeForm(c, pk, "client_id", "app"), "", ""); status != 200 {
		t.Errorf("token after FailTimes: %d %v", status, body)
	}
}

func TestBodyFaults(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	u := s.FHIRBaseURL() + "/.well-known/smart-configuration"
	_, normal := get(t, u)

	s.SetFaults(smarttest.Faults{MalformedJSON: map[smarttest.Endpoint]bool{smarttest.EndpointDiscovery: true}})
	_, b := get(t, u)
	if json.Valid(b) {
		t.Errorf("MalformedJSON: body is valid JSON: %s", b)
	}

	s.SetFaults(smarttest.Faults{Oversize: map[smarttest.Endpoint]int{smarttest.EndpointDiscovery: 2 << 20}})
	_, b = get(t, u)
	var conf map[string]any
	if len(b) < 2<<20 || json.Unmarshal(b, &conf) != nil || conf["issuer"] != s.AuthIssuer() {
		t.Errorf("Oversize: %d bytes, valid %v", len(b), json.Valid(b))
	}

	s.SetFaults(smarttest.Faults{Drip: time.Millisecond})
	begin := time.Now()
	_, b = get(t, s.FHIRBaseURL()+"/Patient/pat-1") // a 401 OperationOutcome
	if !json.Valid(b) || len(b) < 50 || time.Since(begin) < time.Duration(len(b)-1)*time.Millisecond {
		t.Errorf("Drip: %d bytes in %v", len(b), time.Since(begin))
	}

	s.SetFaults(smarttest.Faults{Latency: 50 * time.Millisecond})
	begin = time.Now()
	_, b = get(t, u)
	if time.Since(begin) < 50*time.Millisecond || string(b) != string(normal) {
		t.Errorf("Latency: answered in %v", time.Since(begin))
	}
}

func TestCloseCutsLatency(t *testing.T) {
	t.Parallel()
	s := smarttest.NewServer(smarttest.Options{})
	s.SetFaults(smarttest.Faults{Latency: time.Minute})
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(s.JWKSURL())
		if err == nil {
			resp.Body.Close()
		}
	}()
	for s.Count(smarttest.EndpointJWKS) == 0 {
		time.Sleep(time.Millisecond)
	}
	begin := time.Now()
	s.Close()
	<-done
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
}

func TestTokenResponseFaults(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	s.SetFaults(smarttest.Faults{ExpiresIn: json.RawMessage(`10000000000`)})
	if tok := login(t, s); tok["expires_in"] != float64(10000000000) {
		t.Errorf("expires_in = %v, want 10000000000", tok["expires_in"])
	}
	s.SetFaults(smarttest.Faults{TokenError: "Call_555-0100", TokenErrorDescription: "Your session is locked"})
	pk := newPKCE()
	c := code(t, s, authParams(s, "app", pk))
	status, body := postToken(t, s, codeForm(c, pk, "client_id", "app"), "", "")
	if status != http.StatusBadRequest || body["error"] != "Call_555-0100" || body["error_description"] != "Your session is locked" {
		t.Errorf("token error: %d %v", status, body)
	}
}
