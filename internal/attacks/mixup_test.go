package attacks

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// mixUpVariant is one way a hostile EHR tries to get a code or an identity
// of an honest EHR through the app.
type mixUpVariant struct {
	name      string
	discovery func(*hostileEHR) map[string]any
	forge     bool
}

var mixUpVariants = []mixUpVariant{
	{name: "claims_honest_issuer_and_keys", discovery: claimHonestIssuer},
	{name: "claims_honest_issuer_own_keys_forged_id_token", discovery: claimHonestIssuerOwnKeys, forge: true},
	{name: "honest_authorize_own_token_endpoint", discovery: honestTokenEndpoint},
	{name: "own_origin_forwarding", discovery: ownOrigin},
}

// issuerMode is how the app accepts the three issuers.
type issuerMode struct {
	name string
	// apply configures c with the honest EHRs h1, h2 and the hostile one.
	apply func(c *adapters.Config, h1, h2 *smarttest.Server, hostile *hostileEHR)
}

var issuerModes = []issuerMode{
	{name: "allowlist", apply: func(c *adapters.Config, h1, h2 *smarttest.Server, hostile *hostileEHR) {
		c.Issuers = []core.Issuer{{URL: h1.FHIRBaseURL()}, {URL: h2.FHIRBaseURL()}, {URL: hostile.FHIRBaseURL()}}
	}},
	{name: "any_issuer", apply: func(c *adapters.Config, h1, h2 *smarttest.Server, hostile *hostileEHR) {
		c.Issuers, c.AllowAnyIssuer, c.AllowPrivateNetworks = nil, true, true
	}},
	{name: "any_issuer_beside_configured", apply: func(c *adapters.Config, h1, h2 *smarttest.Server, hostile *hostileEHR) {
		c.Issuers = []core.Issuer{{URL: h1.FHIRBaseURL()}, {URL: h2.FHIRBaseURL()}}
		c.AllowAnyIssuer, c.AllowPrivateNetworks = true, true
	}},
}

// TestMixUpWithThreeIssuers runs every mix-up variant against an app that
// accepts two honest EHRs and a hostile one, as an allowlist and with
// AllowAnyIssuer, with and without the honest EHR's RFC 9207 iss. Each
// attack must end in a refused launch or callback, with no request ever
// reaching the hostile token endpoint and no launch stored; the honest
// launches of the same app still work where the callback proves its
// authorization server.
func TestMixUpWithThreeIssuers(t *testing.T) {
	for _, mode := range issuerModes {
		for _, sendsIss := range []bool{true, false} {
			for _, v := range mixUpVariants {
				name := fmt.Sprintf("%s/iss=%t/%s", mode.name, sendsIss, v.name)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					mixUp{mode: mode, sendsIss: sendsIss, variant: v}.run(t)
				})
			}
		}
	}
}

type mixUp struct {
	mode     issuerMode
	sendsIss bool
	variant  mixUpVariant
}

func (m mixUp) run(t *testing.T) {
	var (
		h2      *smarttest.Server
		hostile *hostileEHR
	)
	e := newEnv(t, setup{
		ehr: smarttest.Options{AuthorizationResponseIss: m.sendsIss},
		cfg: func(e *env, c *adapters.Config) {
			h2 = smarttest.NewServer(smarttest.Options{AuthorizationResponseIss: m.sendsIss, Now: e.clock.Now})
			t.Cleanup(h2.Close)
			h2.RegisterClient(smarttest.Client{ID: "app"})
			hostile = newHostileEHR(t, e.ehr)
			hostile.discovery, hostile.forge = m.variant.discovery, m.variant.forge
			m.mode.apply(c, e.ehr, h2, hostile)
		},
	})

	b := e.browser()
	r := b.followAll(e.hostileLaunchURL(hostile, "pat-1"))
	if r.StatusCode < 400 {
		t.Errorf("the attack ended in %d at %s, want a refusal (body %.300s)", r.StatusCode, r.Request.URL.Redacted(), r.body)
	}
	if n := hostile.TokenRequests(); n != 0 {
		t.Errorf("%d token requests reached the hostile EHR (a code and PKCE verifier each)", n)
	}
	if n := hostile.StolenReads(); n != 0 {
		t.Errorf("the hostile EHR read the honest EHR's patient %d times with a stolen token", n)
	}
	if n := e.launchRecords(); n != 0 {
		t.Errorf("%d launches stored, want 0", n)
	}
	if strings.Contains(r.body, "victim-admin") {
		t.Error("the forged identity reached the page")
	}
	e.checkNoLeaks()

	// The honest EHRs still launch the app whenever their callback can
	// prove which server answered.
	if m.sendsIss {
		for _, h := range []*smarttest.Server{e.ehr, h2} {
			honest := e.browser()
			id := h.NewLaunch(smarttest.LaunchContext{Patient: "pat-2", FHIRUser: "Practitioner/prac-1"})
			page := honest.followAll(e.url("/fhir/launch?iss=" + h.FHIRBaseURL() + "&launch=" + id))
			if page.StatusCode != http.StatusOK || !strings.Contains(page.body, "pat-2") {
				t.Errorf("an honest launch from %s: %d %.300s", h.FHIRBaseURL(), page.StatusCode, page.body)
			}
		}
	}
}
