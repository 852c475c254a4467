package main

import (
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A short run, so the load program keeps working: it builds examples/chi,
// runs it as its own process and drives a few flows through it.
func TestShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs an example app")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	var out strings.Builder
	if err := run(context.Background(), []string{"-flows", "6", "-concurrency", "2", "-hammer", "20", "-launches", "3"}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"flows/s", "app CPU", "peak RSS", "req/s", "discovery 1 and JWKS 1", "ms per launch", "of /healthz's throughput"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
}

// -peer-cmd runs another app in the example's place, with its address,
// issuer and client id in the environment, and only the launches. The
// example reads the same variables, so built here it stands in for a peer
// and the test needs no Node.js.
func TestPeerCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs an example app")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	bin := filepath.Join(t.TempDir(), "peer")
	if out, err := exec.Command("go", "build", "-o", bin, "./examples/chi").CombinedOutput(); err != nil {
		t.Fatalf("building examples/chi: %v\n%s", err, out)
	}
	t.Setenv("SMART_INSECURE_HTTP", "true") // the sandbox EHR is on http://

	if err := run(t.Context(), []string{"-peer-cmd", bin, "-launches", "0"}, io.Discard); err == nil {
		t.Error("-peer-cmd with -launches 0 ran, want an error: a peer runs only the launches")
	}
	var out strings.Builder
	if err := run(t.Context(), []string{"-peer-cmd", bin, "-launches", "3"}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"app: " + bin + ", pid", "ms per launch", "token 1.00, FHIR 1.00"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "flows:") {
		t.Errorf("the report has flows, want only the launches:\n%s", out.String())
	}
}
