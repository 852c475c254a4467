package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/fhirware/smart/core/smarttest"
)

// runArgs runs the command with args and returns its exit code, stdout and
// stderr.
func runArgs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// resource is what the tests read of a printed resource.
type resource struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Subject      struct {
		Reference string `json:"reference"`
	} `json:"subject"`
}

// With no flags, the command starts the sandbox, registers a key it made
// there and prints a patient as JSON.
func TestNoFlagsPrintsASandboxPatient(t *testing.T) {
	t.Parallel()
	code, out, errOut := runArgs(t)
	if code != exitOK {
		t.Fatalf("exit %d, stderr: %s", code, errOut)
	}
	var p resource
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.ResourceType != "Patient" || p.ID != "pat-1" {
		t.Fatalf("stdout is not the sandbox's Patient/pat-1 (%v):\n%s", err, out)
	}
}

// -search prints each resource found as one line of JSON; -alg RS384
// makes the sandbox key an RSA key.
func TestSearchPrintsOneResourceALine(t *testing.T) {
	t.Parallel()
	code, out, errOut := runArgs(t, "-alg", "RS384", "-scope", "system/Observation.rs", "-search", "Observation?patient=pat-2")
	if code != exitOK {
		t.Fatalf("exit %d, stderr: %s", code, errOut)
	}
	n := 0
	for sc := bufio.NewScanner(strings.NewReader(out)); sc.Scan(); n++ {
		var o resource
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil || o.ResourceType != "Observation" || o.Subject.Reference != "Patient/pat-2" {
			t.Errorf("line %d is not an Observation of pat-2 (%v): %s", n+1, err, sc.Text())
		}
	}
	if n != 5 {
		t.Errorf("%d lines, want pat-2's 5 observations", n)
	}
}

// With -issuer, the command reads from that EHR with the key of
// -private-key, named by -kid, as the EHR registered it.
func TestIssuerWithPrivateKey(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	ehr := smarttest.NewServer(smarttest.Options{})
	t.Cleanup(ehr.Close)
	ehr.RegisterClient(smarttest.Client{
		ID: "reader", Auth: smarttest.AuthPrivateKeyJWT, SystemScope: "system/Patient.rs",
		JWKS: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "reader-key", Use: "sig"}}},
	})
	args := []string{"-issuer", ehr.FHIRBaseURL(), "-client-id", "reader", "-private-key", pemFile, "-kid", "reader-key", "-alg", "ES384", "-insecure-http"}

	code, out, errOut := runArgs(t, append(args, "-read", "Patient/pat-3")...)
	var p resource
	if code != exitOK || json.Unmarshal([]byte(out), &p) != nil || p.ID != "pat-3" {
		t.Fatalf("exit %d, stdout %s, stderr %s; want Patient/pat-3", code, out, errOut)
	}

	// Refusals exit 1 with the error's code on stderr.
	for _, tc := range []struct {
		name string
		args []string
		code string
	}{
		{"a scope the client is not registered for", []string{"-scope", "system/Observation.rs", "-search", "Observation?patient=pat-1"}, "token_exchange_failed"},
		{"an unknown kid", []string{"-kid", "nobody", "-read", "Patient/pat-1"}, "token_exchange_failed"},
		{"a patient scope", []string{"-scope", "patient/*.rs", "-read", "Patient/pat-1"}, "invalid_request"},
		{"a missing patient", []string{"-read", "Patient/nobody"}, "fhir_404"},
	} {
		a := append(append([]string{}, args...), tc.args...)
		code, out, errOut := runArgs(t, a...)
		if code != exitFailed || !strings.HasPrefix(errOut, "backend: "+tc.code+": ") || out != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and %s", tc.name, code, out, errOut, tc.code)
		}
	}
	if !strings.Contains(ehr.Refusals(smarttest.EndpointTokenClientCredentials)[0].Description, "not registered for system/Observation.rs") {
		t.Errorf("the EHR's refusals: %v", ehr.Refusals(smarttest.EndpointTokenClientCredentials))
	}

	// -alg must be the key's algorithm.
	code, _, errOut = runArgs(t, append(args[:len(args)-3:len(args)-3], "-alg", "RS384", "-read", "Patient/pat-1")...)
	if code != exitUsage || !strings.Contains(errOut, "signs ES384") {
		t.Errorf("-alg RS384 with an EC key: exit %d, stderr %q; want 2", code, errOut)
	}
}

// A wrong command line exits 2 and says why.
func TestWrongCommandLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"-alg", "RS256"}, "ES384 or RS384"},
		{[]string{"-issuer", "https://ehr.example/fhir", "-read", "Patient/1"}, "-client-id is required"},
		{[]string{"-issuer", "https://ehr.example/fhir", "-client-id", "x", "-read", "Patient/1"}, "-private-key is required"},
		{[]string{"-read", "Patient/pat-1", "-search", "Patient?"}, "exclude each other"},
		{[]string{"-search", "?name=x"}, "is not Type?name=value"},
		{[]string{"-kid", "k"}, "-kid needs -private-key"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		code, out, errOut := runArgs(t, tc.args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, tc.says) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 saying %q", tc.args, code, out, errOut, tc.says)
		}
	}
}
