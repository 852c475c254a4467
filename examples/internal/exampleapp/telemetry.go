package exampleapp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// tracing returns the tracer provider the standard environment variable
// OTEL_TRACES_EXPORTER asks for, and the function that flushes and stops
// it:
//
//   - unset or "none": none (nil); the engine then uses the global
//     provider, which does nothing.
//   - "console": every span printed to stdout as JSON when it ends.
//   - "otlp": spans sent in batches over OTLP/HTTP to
//     OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
//     http://localhost:4318 by default), with the exporter's other
//     OTEL_EXPORTER_OTLP_* variables. OTEL_EXPORTER_OTLP_PROTOCOL, if set,
//     must be http/protobuf.
//
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the service
// ("smart-example-<router>" by default). The W3C trace context propagator
// is installed, so that the requests to the EHR carry traceparent.
func tracing(ctx context.Context, router string, getenv func(string) string, stdout io.Writer) (trace.TracerProvider, func(context.Context) error, error) {
	var opt sdktrace.TracerProviderOption
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "", "none":
		return nil, func(context.Context) error { return nil }, nil
	case "console":
		e, err := stdouttrace.New(stdouttrace.WithWriter(stdout))
		if err != nil {
			return nil, nil, err
		}
		opt = sdktrace.WithSyncer(e) // printed as each span ends
	case "otlp":
		if p := getenv("OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" && p != "http/protobuf" {
			return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: the examples send OTLP over HTTP only (http/protobuf)", p)
		}
		e, err := otlptracehttp.New(ctx) // reads OTEL_EXPORTER_OTLP_*
		if err != nil {
			return nil, nil, err
		}
		opt = sdktrace.WithBatcher(e)
	default:
		return nil, nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: the examples know console, otlp and none", exp)
	}
	name := getenv("OTEL_SERVICE_NAME")
	if name == "" {
		name = "smart-example-" + router
	}
	res, err := resource.Merge(
		resource.Default(), // with OTEL_RESOURCE_ATTRIBUTES
		resource.NewSchemaless(semconv.ServiceName(name)),
	)
	if err != nil {
		return nil, nil, err
	}
	tp := sdktrace.NewTracerProvider(opt, sdktrace.WithResource(res))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return tp, tp.Shutdown, nil
}

// serverSpans wraps the app's handler in a server span per request, so
// that the engine's spans of one request (the ready step, the FHIR reads)
// are one trace. The span is named by the method alone: the path may hold
// an id. A method HTTP does not define is _OTHER, as the conventions say:
// it is the browser's text. A browser's traceparent is not followed: each
// request starts a trace of its own.
func serverSpans(tp trace.TracerProvider, next http.Handler) http.Handler {
	tracer := tp.Tracer("github.com/fhirware/smart/examples/internal/exampleapp")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := knownMethod(r.Method)
		ctx, span := tracer.Start(r.Context(), method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(method)))
		defer span.End()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// knownMethod is m when HTTP defines it, else "_OTHER".
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}
