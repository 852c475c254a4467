package smarttest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fhirware/smart/core/smarttest"
	"github.com/go-jose/go-jose/v4"
)

func TestIDTokenAlgorithms(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"RS256", "RS384", "ES256", "ES384"} {
		for _, omit := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s omitKID=%v", alg, omit), func(t *testing.T) {
				t.Parallel()
				s := start(t, smarttest.Options{IDTokenAlg: alg, OmitKID: omit})
				idt := str(login(t, s)["id_token"])
				h := header(t, idt)
				if h["alg"] != alg || (h["kid"] == nil) != omit {
					t.Errorf("header %v (OmitKID %v)", h, omit)
				}
				if _, err := verifyIDToken(t, s, idt); err != nil {
					t.Errorf("verify: %v", err)
				}
				own, err := s.SignIDToken(map[string]any{"iss": s.AuthIssuer(), "custom": "x"})
				if err != nil {
					t.Fatal(err)
				}
				claims, err := verifyIDToken(t, s, own)
				if err != nil || claims["custom"] != "x" {
					t.Errorf("SignIDToken: %v %v", claims, err)
				}
			})
		}
	}
}

func header(t *testing.T, jws string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(jws, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func payload(t *testing.T, jws string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(jws, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

type idTokenFaultCase struct {
	name  string
	fault smarttest.IDTokenFault
	// check returns a description of what is wrong with how the fault
	// shows, or "".
	check func(s *smarttest.Server, h, c map[string]any, verifyErr error, idt string) string
}

func (tc idTokenFaultCase) run(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	s.SetFaults(smarttest.Faults{IDToken: tc.fault})
	idt := str(login(t, s)["id_token"])
	_, err := verifyIDToken(t, s, idt)
	if problem := tc.check(s, header(t, idt), payload(t, idt), err, idt); problem != "" {
		t.Error(problem)
	}
}

func TestIDTokenFaults(t *testing.T) {
	t.Parallel()
	now := float64(time.Now().Unix())
	signedOK := func(err error) string {
		if err != nil {
			return "signature should verify: " + err.Error()
		}
		return ""
	}
	for _, tc := range []idTokenFaultCase{
		{"ok", smarttest.IDTokenOK, func(s *smarttest.Server, h, c map[string]any, err error, _ string) string {
			if c["iss"] != s.AuthIssuer() || c["aud"] != "app" || c["nonce"] != "nonce-1" || c["fhirUser"] != "Practitioner/prac-1" {
				return "claims wrong"
			}
			return signedOK(err)
		}},
		{"wrong issuer", smarttest.IDTokenWrongIssuer, func(s *smarttest.Server, h, c map[string]any, err error, _ string) string {
			if c["iss"] == s.AuthIssuer() {
				return "iss is right"
			}
			return signedOK(err)
		}},
		{"wrong audience", smarttest.IDTokenWrongAudience, func(s *smarttest.Server, h, c map[string]any, err error, _ string) string {
			if c["aud"] == "app" {
				return "aud is right"
			}
			return signedOK(err)
		}},
		{"audiences without client", smarttest.IDTokenMultipleAudiencesWithoutClient, func(s *smarttest.Server, h, c map[string]any, err error, _ string) string {
			aud, _ := c["aud"].([]any)
			if len(aud) < 2 || aud[0] == "app" || aud[1] == "app" {
				return "aud should be several other clients"
			}
			return signedOK(err)
		}},
		{"expired", smarttest.IDTokenExpired, func(s *smarttest.Server, h, c map[string]any, err error, _ string) string {
			if c["exp"].(float64) >= now {
				return "not expired"
			}
			return signedOK(err)
		}},
		{"future iat", smarttest.IDTokenFutureIAT, func(s *smarttest.Server, h, c map[string]any, err error, _ string) string {
			if c["iat"].(float64) < now+23*3600 {
				return "iat not a day ahead"
			}
			return signedOK(err)
		}},
		{"azp other client", smarttest.IDTokenAzpOtherClient, func(s *smarttest.Server, h, c map[string]any, err error, _ string) string {
			if c["aud"] != "app" || c["azp"] == nil || c["azp"] == "app" {
				return "aud should be the client and azp another one"
			}
			return signedOK(err)
		}},
		{"audiences without azp", smarttest.IDTokenMultipleAudiencesNoAzp, func(s *smarttest.Server, h, c map[string]any, err error, _ string) string {
			aud, _ := c["aud"].([]any)
			if _, ok := c["azp"]; len(aud) != 2 || aud[0] != "app" || aud[1] == "app" || ok {
				return "aud should be the client and another, without azp"
			}
			return signedOK(err)
		}},
		{"long lived", smarttest.IDTokenLongLived, func(s *smarttest.Server, h, c map[string]any, err error, _ string) string {
			if _, ok := c["iat"]; ok || c["exp"].(float64) < now+4*365*24*3600 {
				return "should have no iat and an exp years ahead"
			}
			return signedOK(err)
		}},
		{"wrong nonce", smarttest.IDTokenWrongNonce, func(s *smarttest.Server, h, c map[string]any, err error, _ string) string {
			if c["nonce"] == nil || c["nonce"] == "nonce-1" {
				return "nonce not wrong"
			}
			return signedOK(err)
		}},
		{"no nonce", smarttest.IDTokenNoNonce, func(s *smarttest.Server, h, c map[string]any, err error, _ string) string {
			if _, ok := c["nonce"]; ok {
				return "nonce present"
			}
			return signedOK(err)
		}},
		{"bad signature", smarttest.IDTokenBadSignature, func(s *smarttest.Server, h, c map[string]any, err error, _ string) string {
			if h["kid"] != "rsa-1" || err == nil {
				return "should carry the real kid and fail verification"
			}
			return ""
		}},
		{"unknown kid", smarttest.IDTokenUnknownKID, func(s *smarttest.Server, h, c map[string]any, err error, _ string) string {
			if h["kid"] == "rsa-1" || h["kid"] == nil || err == nil {
				return "should name an unknown kid"
			}
			return ""
		}},
		{"alg none", smarttest.IDTokenAlgNone, func(s *smarttest.Server, h, c map[string]any, err error, idt string) string {
			if h["alg"] != "none" || !strings.HasSuffix(idt, ".") || err == nil || c["iss"] != s.AuthIssuer() {
				return "should be an unsigned token with good claims"
			}
			return ""
		}},
		{"hs256 with public key", smarttest.IDTokenHS256PublicKey, func(s *smarttest.Server, h, c map[string]any, err error, idt string) string {
			if h["alg"] != "HS256" || err == nil {
				return "should be HS256 and fail RSA verification"
			}
			resp, gerr := http.Get(s.JWKSURL())
			if gerr != nil {
				return gerr.Error()
			}
			defer resp.Body.Close()
			var set jose.JSONWebKeySet
			json.NewDecoder(resp.Body).Decode(&set)
			der, _ := x509.MarshalPKIXPublicKey(set.Key("rsa-1")[0].Key)
			mac := hmac.New(sha256.New, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			i := strings.LastIndex(idt, ".")
			mac.Write([]byte(idt[:i]))
			if base64.RawURLEncoding.EncodeToString(mac.Sum(nil)) != idt[i+1:] {
				return "HMAC is not keyed with the PEM public key"
			}
			return ""
		}},
	} {
		t.Run(tc.name, tc.run)
	}
}

func TestIDTokenMissing(t *testing.T) {
	t.Parallel()
	s := start(t, smarttest.Options{})
	s.SetFaults(smarttest.Faults{IDToken: smarttest.IDTokenMissing})
	tok := login(t, s)
	if _, ok := tok["id_token"]; ok || !strings.Contains(str(tok["scope"]), "openid") {
		t.Errorf("want openid granted and no id_token: %v", tok)
	}
}
