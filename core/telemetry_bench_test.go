package core_test

import (
	"context"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// BenchmarkReadyOtel is BenchmarkReady (the engine's ready step alone,
// over an in-memory store) with the engine's telemetry: otel=global takes
// the global providers with no SDK installed, otel=noop the API's no-op
// ones, otel=sdk the SDK's, sampling every span into a batch processor
// whose exporter drops them and aggregating every measurement.
// benchstat -col /otel.
func BenchmarkReadyOtel(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  func(b *testing.B) core.Config
	}{
		{"otel=global", func(*testing.B) core.Config { return core.Config{} }},
		{"otel=noop", func(*testing.B) core.Config {
			return core.Config{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}
		}},
		{"otel=sdk", func(b *testing.B) core.Config {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardSpans{}))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() { tp.Shutdown(context.Background()); mp.Shutdown(context.Background()) })
			return core.Config{TracerProvider: tp, MeterProvider: mp}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := newHarness(b, smarttest.Options{}, smarttest.Client{}, tc.cfg(b), core.Issuer{})
			res := h.complete("b", &pat1)
			b.ReportAllocs()
			for b.Loop() {
				rc, err := h.eng.Ready(context.Background(), "b", res.Handle())
				if err != nil || rc.Patient().ID != "pat-1" {
					b.Fatal(err)
				}
			}
		})
	}
}

// discardSpans is a span exporter that drops every span.
type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }
