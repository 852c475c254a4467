package core_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log"
	"net/url"

	"github.com/go-jose/go-jose/v4"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/fhir"
	"github.com/fhirware/smart/core/smarttest"
)

// Observation is the part of a FHIR Observation the example reads.
type Observation struct {
	ID   string `json:"id"`
	Code struct {
		Text string `json:"text"`
	} `json:"code"`
}

// SMART Backend Services: the app reads as itself, with no user and no
// launch, with a system token got with its private key. Here against the
// sandbox EHR of core/smarttest, where the app's public key is registered
// under its kid with the system scopes it may get.
func ExampleEngine_Backend() {
	ehr := smarttest.NewServer(smarttest.Options{})
	defer ehr.Close()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader) // ES384; an RSA key signs RS384
	if err != nil {
		log.Fatal(err)
	}
	ehr.RegisterClient(smarttest.Client{
		ID: "my-backend", Auth: smarttest.AuthPrivateKeyJWT, SystemScope: "system/*.rs",
		JWKS: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "my-key-1", Use: "sig"}}},
	})
	iss := ehr.FHIRBaseURL()
	ctx := context.Background()

	cfg := core.Config{
		ClientID: "my-backend", // no CallbackURL: this engine does Backend Services only
		Issuers:  []core.Issuer{{URL: iss, Auth: core.ClientAuth{Signer: key, KeyID: "my-key-1"}}},
	}
	cfg.AllowInsecureHTTP = true // the sandbox speaks plain http

	report := func() error {
		eng, err := core.New(cfg) // once, when the app starts
		if err != nil {
			return err
		}
		c, err := eng.Backend(ctx, iss, "system/Patient.rs system/Observation.rs")
		if err != nil {
			return err // discovery_failed, token_exchange_failed, invalid_config …
		}
		q := url.Values{"patient": {"pat-3"}, "_sort": {"date"}}
		for obs, err := range fhir.Search[Observation](ctx, c, "Observation", q) {
			if err != nil {
				return err
			}
			fmt.Println(obs.ID, obs.Code.Text)
		}
		return nil
	}
	if err := report(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// obs-18 Heart rate
	// obs-19 Body weight
	// obs-20 Body temperature
}
