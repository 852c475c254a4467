package core_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// An EHR whose refresh gives back the access token its FHIR server just
// refused costs one refresh per refused request, not three: the engine
// does not refresh again for a token the EHR itself just gave.
func TestRefreshGivingTheRefusedTokenAgainIsNotRepeated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var same atomic.Value // the access token refreshes answer with; "" passes them through
	same.Store("")
	rt := roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		var form []byte
		if req.Body != nil {
			form, _ = io.ReadAll(req.Body)
			req.Body = io.NopCloser(bytes.NewReader(form))
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		tok := same.Load().(string)
		if err != nil || tok == "" || !bytes.Contains(form, []byte("grant_type=refresh_token")) {
			return resp, err
		}
		var m map[string]any
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		m["access_token"] = tok
		b, _ := json.Marshal(m)
		resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		resp.Header.Del("Content-Length")
		return resp, nil
	})
	env := launchForFHIR(t, fhirSetup{config: func(c *core.Config) { c.HTTPClient = &http.Client{Transport: rt} }})
	var p fhirPatient
	if err := readPatient(ctx, env.rc, &p); err != nil {
		t.Fatal(err)
	}
	same.Store(env.ehr.FHIRTokens()[0])
	env.ehr.ExpireAccessTokens()
	env.ehr.ResetCounts()
	err := readPatient(ctx, env.rc, &p)
	wantCode(t, err, core.CodeLaunchExpired)
	if got := env.ehr.Count(smarttest.EndpointTokenRefresh); got != 1 {
		t.Errorf("%d refreshes for one refused request, want 1", got)
	}
}
