package main

import (
	"context"
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
