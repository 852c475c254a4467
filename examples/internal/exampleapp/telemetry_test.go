package exampleapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// runSandboxEnv is runSandbox with the environment kv.
func runSandboxEnv(t *testing.T, kv map[string]string) *output {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &output{open: make(chan string, 1)}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, "nethttp", mountNetHTTP, []string{"-addr", "127.0.0.1:0"}, env(kv), out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case u := <-out.open:
		launchFromSandbox(t, u)
	case err := <-done:
		t.Fatalf("Run ended before serving: %v\n%s", err, out)
	case <-time.After(20 * time.Second):
		t.Fatalf("Run printed no URL:\n%s", out)
	}
	return out
}

// With OTEL_TRACES_EXPORTER=console, a launch prints its spans to stdout:
// the launch, the callback with the token exchange and the id_token
// verification under it, the ready step and the FHIR read, with the
// patient's id nowhere.
func TestConsoleTracesOfALaunch(t *testing.T) {
	out := runSandboxEnv(t, map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "smart-test"})
	s := out.String()
	for _, want := range []string{`"Name":"smart.launch"`, `"Name":"smart.callback"`, `"Name":"smart.token"`,
		`"Name":"smart.id_token.verify"`, `"Name":"smart.ready"`, `"Name":"GET /fhir/Patient/{id}"`, `"Value":"smart-test"`} {
		if !strings.Contains(s, want) {
			t.Errorf("stdout has no %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "pat-2") {
		t.Errorf("stdout names the patient:\n%s", s)
	}
}

// Without OTEL_TRACES_EXPORTER, nothing is traced to stdout; an unknown
// exporter is a usage error.
func TestTracesExporterSetting(t *testing.T) {
	out := runSandboxEnv(t, nil)
	if s := out.String(); strings.Contains(s, `"SpanContext"`) {
		t.Errorf("stdout has spans without OTEL_TRACES_EXPORTER:\n%s", s)
	}
	err := Run(t.Context(), "nethttp", mountNetHTTP, []string{"-addr", "127.0.0.1:0"},
		env(map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}), io.Discard)
	if !errors.As(err, new(*usageError)) || !strings.Contains(err.Error(), "OTEL_TRACES_EXPORTER") {
		t.Errorf("OTEL_TRACES_EXPORTER=zipkin: %v, want a usage error naming it", err)
	}
}

// A request's method is the browser's text: the server span's name and
// method attribute are HTTP's own methods, or _OTHER for any other, so
// that a browser can put no text of its own in them (nor make span names
// without end for a collector that counts by name).
func TestServerSpanMethodIsBounded(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	srv := httptest.NewServer(serverSpans(tp, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	t.Cleanup(srv.Close)
	for _, method := range []string{"GET", "JANEDOE-555-0100"} {
		req, err := http.NewRequest(method, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	var names []string
	for _, sp := range rec.Ended() {
		names = append(names, sp.Name())
		if s := fmt.Sprint(sp.Name(), sp.Attributes()); strings.Contains(s, "JANEDOE") {
			t.Errorf("a span holds the request's method: %s", s)
		}
	}
	if fmt.Sprint(names) != "[GET _OTHER]" {
		t.Errorf("span names %v, want [GET _OTHER]", names)
	}
}

// With OTEL_METRICS_EXPORTER=console, the engine's metrics of a launch are
// printed to stdout at each export (every 50 ms here, by
// OTEL_METRIC_EXPORT_INTERVAL), with the patient's id nowhere; an unknown
// exporter is a usage error.
func TestConsoleMetricsOfALaunch(t *testing.T) {
	out := runSandboxEnv(t, map[string]string{"OTEL_METRICS_EXPORTER": "console", "OTEL_METRIC_EXPORT_INTERVAL": "50"})
	want := []string{`"Name":"smart.launches"`, `"Name":"smart.callbacks"`, `"Name":"smart.fhir.request.duration"`}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s, missing := out.String(), ""
		for _, w := range want {
			if !strings.Contains(s, w) {
				missing = w
			}
		}
		if missing == "" {
			if strings.Contains(s, "pat-2") {
				t.Errorf("stdout names the patient:\n%s", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s on stdout after the launch:\n%s", missing, s)
		}
	}
	err := Run(t.Context(), "nethttp", mountNetHTTP, []string{"-addr", "127.0.0.1:0"},
		env(map[string]string{"OTEL_METRICS_EXPORTER": "prometheus"}), io.Discard)
	if !errors.As(err, new(*usageError)) || !strings.Contains(err.Error(), "OTEL_METRICS_EXPORTER") {
		t.Errorf("OTEL_METRICS_EXPORTER=prometheus: %v, want a usage error naming it", err)
	}
}
