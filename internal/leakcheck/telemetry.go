package leakcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Telemetry is an OpenTelemetry SDK for an engine under test
// (core.Config.TracerProvider and MeterProvider): every span goes to an
// in-memory recorder and, as JSON, through the stdout exporter into a
// buffer; metrics are read on demand. Text returns all of it, for a suite
// to search for what must never be there.
type Telemetry struct {
	TracerProvider *sdktrace.TracerProvider
	MeterProvider  *sdkmetric.MeterProvider

	spans    *tracetest.SpanRecorder
	reader   *sdkmetric.ManualReader
	exported *Buffer
}

// NewTelemetry returns a Telemetry; Shutdown releases it.
func NewTelemetry() *Telemetry {
	t := &Telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader(), exported: &Buffer{}}
	exp, err := stdouttrace.New(stdouttrace.WithWriter(t.exported))
	if err != nil {
		panic("leakcheck: " + err.Error()) // only an option error, and there is none
	}
	t.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(t.spans), sdktrace.WithSyncer(exp))
	t.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(t.reader))
	return t
}

// Spans returns the number of spans ended so far.
func (t *Telemetry) Spans() int { return len(t.spans.Ended()) }

// Text returns every span (name, status, attributes, events and their
// attributes, links) as the recorder holds it and as the exporter wrote it,
// and every metric with its attributes, as text.
func (t *Telemetry) Text() (string, error) {
	var b strings.Builder
	for _, s := range t.spans.Ended() {
		fmt.Fprintf(&b, "%s %v %v\n", s.Name(), s.Status(), s.Attributes())
		for _, e := range s.Events() {
			fmt.Fprintf(&b, "  event %s %v\n", e.Name, e.Attributes)
		}
		for _, l := range s.Links() {
			fmt.Fprintf(&b, "  link %v\n", l.Attributes)
		}
	}
	b.WriteString(t.exported.String())
	var rm metricdata.ResourceMetrics
	if err := t.reader.Collect(context.Background(), &rm); err != nil {
		return "", err
	}
	var m bytes.Buffer
	if err := json.NewEncoder(&m).Encode(rm); err != nil {
		return "", err
	}
	b.Write(m.Bytes())
	return b.String(), nil
}

// Shutdown stops the providers.
func (t *Telemetry) Shutdown() {
	t.TracerProvider.Shutdown(context.Background())
	t.MeterProvider.Shutdown(context.Background())
}
