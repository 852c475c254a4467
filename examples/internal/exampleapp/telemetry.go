package exampleapp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
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
	res, err := serviceResource(router, getenv)
	if err != nil {
		return nil, nil, err
	}
	tp := sdktrace.NewTracerProvider(opt, sdktrace.WithResource(res))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return tp, tp.Shutdown, nil
}

// serviceResource names the service: OTEL_SERVICE_NAME, or
// "smart-example-<router>", with OTEL_RESOURCE_ATTRIBUTES.
func serviceResource(router string, getenv func(string) string) (*resource.Resource, error) {
	name := getenv("OTEL_SERVICE_NAME")
	if name == "" {
		name = "smart-example-" + router
	}
	return resource.Merge(
		resource.Default(), // with OTEL_RESOURCE_ATTRIBUTES
		resource.NewSchemaless(semconv.ServiceName(name)),
	)
}

// metering returns the meter provider the standard environment variable
// OTEL_METRICS_EXPORTER asks for, and the function that flushes and stops
// it, as tracing does for spans:
//
//   - unset or "none": none (nil); the engine then uses the global
//     provider, which records nothing.
//   - "console": the metrics printed to stdout as JSON every
//     OTEL_METRIC_EXPORT_INTERVAL (60 s by default) and at exit.
//   - "otlp": sent over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (or
//     OTEL_EXPORTER_OTLP_METRICS_ENDPOINT), with the exporter's other
//     OTEL_EXPORTER_OTLP_* variables.
func metering(ctx context.Context, router string, getenv func(string) string, stdout io.Writer) (metric.MeterProvider, func(context.Context) error, error) {
	var exp sdkmetric.Exporter
	switch name := strings.TrimSpace(getenv("OTEL_METRICS_EXPORTER")); name {
	case "", "none":
		return nil, func(context.Context) error { return nil }, nil
	case "console":
		e, err := stdoutmetric.New(stdoutmetric.WithWriter(stdout))
		if err != nil {
			return nil, nil, err
		}
		exp = e
	case "otlp":
		if p := getenv("OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" && p != "http/protobuf" {
			return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: the examples send OTLP over HTTP only (http/protobuf)", p)
		}
		e, err := otlpmetrichttp.New(ctx) // reads OTEL_EXPORTER_OTLP_*
		if err != nil {
			return nil, nil, err
		}
		exp = e
	default:
		return nil, nil, fmt.Errorf("OTEL_METRICS_EXPORTER=%s: the examples know console, otlp and none", name)
	}
	res, err := serviceResource(router, getenv)
	if err != nil {
		return nil, nil, err
	}
	var opts []sdkmetric.PeriodicReaderOption
	if v := getenv("OTEL_METRIC_EXPORT_INTERVAL"); v != "" { // milliseconds, as the specification says
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return nil, nil, fmt.Errorf("OTEL_METRIC_EXPORT_INTERVAL=%s: want a number of milliseconds", v)
		}
		opts = append(opts, sdkmetric.WithInterval(time.Duration(ms)*time.Millisecond))
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, opts...)), sdkmetric.WithResource(res))
	return mp, mp.Shutdown, nil
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
