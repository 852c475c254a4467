package benchmarks

import (
	"context"
	"testing"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2/memstore"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/fhirware/smart/core"
)

// The ready path with the engine's telemetry: otel=global leaves
// Config.TracerProvider and MeterProvider unset, so the engine takes the
// global providers, which do nothing until an SDK is installed (what an
// app that does not use OpenTelemetry runs); otel=noop sets the API's
// no-op providers; otel=sdk sets the SDK's, sampling every span into a
// batch processor whose exporter drops them, and aggregating every
// measurement for a reader: what tracing and metrics cost on the path.
// benchstat -col /otel.
func BenchmarkReadyPathOtel(b *testing.B) {
	for _, tc := range []struct {
		name string
		edit func(*testing.B, *core.Config)
	}{
		{"otel=global", func(*testing.B, *core.Config) {}},
		{"otel=noop", func(_ *testing.B, c *core.Config) {
			c.TracerProvider, c.MeterProvider = tracenoop.NewTracerProvider(), metricnoop.NewMeterProvider()
		}},
		{"otel=sdk", func(b *testing.B, c *core.Config) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() { tp.Shutdown(context.Background()); mp.Shutdown(context.Background()) })
			c.TracerProvider, c.MeterProvider = tp, mp
		}},
	} {
		edit := func(b *testing.B) func(*core.Config) { return func(c *core.Config) { tc.edit(b, c) } }
		b.Run("store=memstore/"+tc.name, func(b *testing.B) {
			benchSmartWith(b, memstore.NewWithCleanupInterval(0), edit(b))
		})
		if c := redisClient(b); c != nil {
			b.Run("store=redis/"+tc.name, func(b *testing.B) {
				benchSmartWith(b, goredisstore.NewWithPrefix(c, prefix(b)), edit(b))
			})
		}
	}
}

// discard is a span exporter that drops every span.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }
