package core

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/fhirware/smart/core/fhir"
)

// The engine's OpenTelemetry instrumentation: spans for launch, callback,
// ready, refresh, discovery, token, JWKS, id_token and every request to
// the EHR; metrics for launches, callbacks, refreshes, FHIR requests and
// the Storage. It goes through the OpenTelemetry API only, with the
// providers of Config.TracerProvider and Config.MeterProvider.
//
// Nothing secret or personal goes into a span, an event or a metric: no
// token, code, state, nonce, assertion, cookie, session id, launch handle,
// patient, encounter or user id, and no URL query. Issuers appear by host,
// FHIR URLs with every id replaced by {id}, errors by their stable Code.

// scopeName is the instrumentation scope of the engine's tracer and meter.
const scopeName = "github.com/fhirware/smart/core"

// Span names.
const (
	spanLaunch    = "smart.launch"
	spanCallback  = "smart.callback"
	spanReady     = "smart.ready"
	spanLogout    = "smart.logout"
	spanRefresh   = "smart.refresh"
	spanLockWait  = "smart.refresh.lock_wait"
	spanDiscovery = "smart.discovery"
	spanToken     = "smart.token"
	spanJWKS      = "smart.jwks"
	spanIDToken   = "smart.id_token.verify"
)

// Attribute keys of the engine's own; the HTTP ones are semconv's.
const (
	// attrErrorCode is the engine's stable error Code of a failed span.
	attrErrorCode = attribute.Key("smart.error.code")
	// attrIssuer is an issuer's host (and port): never its path.
	attrIssuer = attribute.Key("smart.issuer")
	// attrOutcome is "ok" or the error Code of a launch or callback, or
	// ok, failed or waited for a refresh.
	attrOutcome = attribute.Key("smart.outcome")
	// attrLaunchType is "ehr" or "standalone".
	attrLaunchType = attribute.Key("smart.launch.type")
	// attrGrantType is a token request's grant_type.
	attrGrantType = attribute.Key("smart.grant_type")
	// attrStoreOp is a Storage operation: get, set, delete or take.
	attrStoreOp = attribute.Key("smart.store.operation")
	// attrResourceType is a FHIR request's resource type.
	attrResourceType = attribute.Key("smart.fhir.resource_type")
	// attrStatusClass is an HTTP status's class: "2xx" … "5xx", or
	// "none" when no answer came.
	attrStatusClass = attribute.Key("smart.http.status_class")
)

// telemetry holds the engine's tracer and instruments, made once by New
// from the configured providers.
type telemetry struct {
	tracer trace.Tracer

	// global is the API's global tracer provider when the engine was
	// given it (by default, otel.GetTracerProvider at New) before any SDK
	// was installed (see apiGlobal), else nil; quiet is set
	// when the provider is the API's no-op one. See startHot.
	global trace.TracerProvider
	quiet  bool

	launches      metric.Int64Counter
	callbacks     metric.Int64Counter
	refreshes     metric.Int64Counter
	refreshLocks  metric.Int64UpDownCounter
	fhirDuration  metric.Float64Histogram
	storeDuration metric.Float64Histogram

	storeOK [storeOps]metric.RecordOption // the attributes of a successful store operation, made once

	// configured are the configured issuers' URLs: the only issuers a
	// metric names by host (see metricIssuer). Read-only after New.
	configured map[string]bool
}

// otherIssuer is the smart.issuer of a metric for an issuer that is not
// configured (one accepted by AllowAnyIssuer).
const otherIssuer = "_OTHER"

// nameIssuers makes the configured issuers the ones metrics name.
func (t *telemetry) nameIssuers(issuers []Issuer) {
	t.configured = make(map[string]bool, len(issuers))
	for i := range issuers {
		t.configured[issuers[i].URL] = true
	}
}

// metricIssuer is the smart.issuer of a metric for an issuer URL: the
// host of a configured issuer, else otherIssuer. With AllowAnyIssuer,
// anyone with a wildcard DNS record can launch the app from endless hosts;
// each a value of its own would grow the SDK's attribute sets (and push
// the configured issuers' points into its overflow point) and the
// backend's series without bound. Spans, which are not aggregated, keep
// the host.
func (t *telemetry) metricIssuer(iss string) string {
	if t.configured[iss] {
		return issuerHost(iss)
	}
	return otherIssuer
}

// Storage operations, as attrStoreOp names them.
const (
	storeGet = iota
	storeSet
	storeDelete
	storeTake
	storeOps
)

var storeOpNames = [storeOps]string{"get", "set", "delete", "take"}

// durationBuckets are the bucket bounds of the duration histograms, in
// seconds: from 100µs (a store on loopback) to 10s (a slow EHR).
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// newTelemetry makes the engine's tracer and instruments. An instrument the
// provider fails to make is a no-op one (the API returns one with the
// error), and the error goes to OpenTelemetry's error handler.
func newTelemetry(tp trace.TracerProvider, mp metric.MeterProvider) *telemetry {
	t := &telemetry{tracer: tp.Tracer(scopeName, trace.WithSchemaURL(semconv.SchemaURL))}
	if _, ok := tp.(tracenoop.TracerProvider); ok {
		t.quiet = true
	}
	m := mp.Meter(scopeName, metric.WithSchemaURL(semconv.SchemaURL))
	var errs []error
	keep := func(err error) { errs = append(errs, err) }
	var err error
	t.launches, err = m.Int64Counter("smart.launches", metric.WithUnit("{launch}"),
		metric.WithDescription("Launches started, by outcome (ok or the error code) and issuer host."))
	keep(err)
	t.callbacks, err = m.Int64Counter("smart.callbacks", metric.WithUnit("{callback}"),
		metric.WithDescription("Callbacks finished, by outcome (ok or the error code) and issuer host."))
	keep(err)
	t.refreshes, err = m.Int64Counter("smart.refreshes", metric.WithUnit("{refresh}"),
		metric.WithDescription("Token refreshes of launches, by outcome: ok, failed, or waited (another request or instance had refreshed)."))
	keep(err)
	t.refreshLocks, err = m.Int64UpDownCounter("smart.refresh.locks.active", metric.WithUnit("{lock}"),
		metric.WithDescription("Config.Locker locks held by this process for token refreshes."))
	keep(err)
	t.fhirDuration, err = m.Float64Histogram("smart.fhir.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of FHIR requests (of launches and Backend Services) until the answer's body is read or closed, by issuer host, method and status class."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	keep(err)
	t.storeDuration, err = m.Float64Histogram("smart.store.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of the engine's Storage operations, by operation; error.type is set on failures."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	keep(err)
	if err := errors.Join(errs...); err != nil {
		otel.Handle(err)
	}
	for op := range storeOps {
		t.storeOK[op] = metric.WithAttributeSet(attribute.NewSet(attrStoreOp.String(storeOpNames[op])))
	}
	return t
}

// operation is one of the engine's operations that counts in a metric by
// outcome and issuer (launch, callback), with its span.
type operation struct {
	span   trace.Span
	issuer string // the issuer's URL, once accepted; "" before
}

type operationKey struct{}

// begin starts the span of an operation and puts the operation in ctx, so
// that noteIssuer can name its issuer.
func (t *telemetry) begin(ctx context.Context, name string) (context.Context, *operation) {
	ctx, span := t.tracer.Start(ctx, name)
	op := &operation{span: span}
	return context.WithValue(ctx, operationKey{}, op), op
}

// end ends the operation's span and counts it in counter by outcome and
// issuer.
func (t *telemetry) end(ctx context.Context, op *operation, counter metric.Int64Counter, err error) {
	if counter.Enabled(ctx) {
		outcome := "ok"
		if err != nil {
			outcome = errorType(err)
		}
		attrs := []attribute.KeyValue{attrOutcome.String(outcome)}
		if op.issuer != "" {
			attrs = append(attrs, attrIssuer.String(t.metricIssuer(op.issuer)))
		}
		counter.Add(ctx, 1, metric.WithAttributes(attrs...))
	}
	endSpan(op.span, err)
}

// noteIssuer names the issuer of the operation in ctx, once the engine
// has accepted it: a configured issuer, or one that answered discovery
// (with AllowAnyIssuer). An issuer refused never appears: its name is the
// request's text, and would let anyone add values to a metric.
func noteIssuer(ctx context.Context, is *Issuer) {
	op, ok := ctx.Value(operationKey{}).(*operation)
	if !ok {
		return
	}
	op.issuer = is.URL
	op.span.SetAttributes(attrIssuer.String(issuerHost(is.URL)))
}

// issuerHost is the host (and port) of an issuer URL: its path may name a
// tenant, and a metric needs few values.
func issuerHost(iss string) string {
	u, err := url.Parse(iss)
	if err != nil {
		return ""
	}
	return u.Host
}

// startHot starts the span of a step every app request makes (the ready
// step). When no span could record, it makes none and returns a no-op
// span, so that an app without OpenTelemetry pays nothing on that path:
// with the API's no-op provider, or with the global provider the engine
// took by default while no SDK is installed behind it (the global
// functions then still return the provider New took; once an SDK is
// installed they return the SDK's, and spans are made again).
func (t *telemetry) startHot(ctx context.Context, name string) (context.Context, trace.Span) {
	if t.quiet || (t.global != nil && otel.GetTracerProvider() == t.global) {
		return ctx, noSpan
	}
	return t.tracer.Start(ctx, name)
}

// apiGlobal reports whether tp is the OpenTelemetry API's own global
// provider: the one otel.GetTracerProvider returns while no SDK is
// installed, which makes nothing until one is and then hands its work to
// it. A provider installed with otel.SetTracerProvider before New (an SDK,
// say) is not it, and the engine's spans are then always made.
func apiGlobal(tp trace.TracerProvider) bool {
	t := reflect.TypeOf(tp)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == "go.opentelemetry.io/otel/internal/global"
}

// noSpan is the API's non-recording span without a span context.
var noSpan = trace.SpanFromContext(context.Background())

// start starts a span of the engine's, with attributes when it records.
func (t *telemetry) start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx, span := t.tracer.Start(ctx, name)
	if len(attrs) > 0 && span.IsRecording() {
		span.SetAttributes(attrs...)
	}
	return ctx, span
}

// endSpan ends span, marking it failed with err's code when err is not nil:
// the code only, never the message, whose cause may quote what an EHR or
// a request said.
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		failSpan(span, err)
	}
	span.End()
}

// failSpan sets a span's error status and attributes.
func failSpan(span trace.Span, err error) {
	typ := errorType(err)
	if code := errorCode(err); code != "" {
		span.SetAttributes(attrErrorCode.String(string(code)))
	}
	span.SetAttributes(semconv.ErrorTypeKey.String(typ))
	span.SetStatus(codes.Error, typ)
}

// errorCode is the Code of the first *Error in err's chain, or "".
func errorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// errorType names an error in few words: its Code, a FHIR answer's status,
// or "_OTHER" (semconv's value for an error of no known kind).
func errorType(err error) string {
	if code := errorCode(err); code != "" {
		return string(code)
	}
	var fe *fhir.Error
	if errors.As(err, &fe) && fe.StatusCode != 0 {
		return statusText(fe.StatusCode)
	}
	return semconv.ErrorTypeOther.Value.AsString()
}

// refreshTrace follows one refresh of a launch (refreshLaunch). Its span
// is made only when the refresh goes ahead (or fails): a refresh that finds
// the token refreshed meanwhile by another request or instance is counted
// as waited, and leaves an event on the caller's span, so that any number
// of requests on one expired token give one refresh span.
type refreshTrace struct {
	tel       *telemetry
	start     time.Time
	lockStart time.Time // zero without Config.Locker
	lockEnd   time.Time
	issuer    string     // the issuer's host, for the span
	metric    string     // the issuer as the metric names it (metricIssuer)
	span      trace.Span // nil until begin
}

func (t *telemetry) refreshTrace() *refreshTrace {
	return &refreshTrace{tel: t, start: time.Now()}
}

// locked notes the wait for Config.Locker's lock, from start to now, and
// counts the lock as held until the returned function runs.
func (r *refreshTrace) locked(ctx context.Context, start time.Time) func() {
	r.lockStart, r.lockEnd = start, time.Now()
	r.tel.refreshLocks.Add(ctx, 1)
	return func() { r.tel.refreshLocks.Add(ctx, -1) }
}

// begin starts the refresh's span, dated from the start of the refresh,
// with the lock wait as its child, and returns ctx with it.
func (r *refreshTrace) begin(ctx context.Context) context.Context {
	ctx, r.span = r.tel.tracer.Start(ctx, spanRefresh, trace.WithTimestamp(r.start))
	if !r.span.IsRecording() {
		return ctx
	}
	if r.issuer != "" {
		r.span.SetAttributes(attrIssuer.String(r.issuer))
	}
	if !r.lockStart.IsZero() {
		_, wait := r.tel.tracer.Start(ctx, spanLockWait, trace.WithTimestamp(r.lockStart))
		wait.End(trace.WithTimestamp(r.lockEnd))
	}
	return ctx
}

// end counts the refresh by outcome and ends its span; a refresh that
// failed before begin gets its span here.
func (r *refreshTrace) end(ctx context.Context, refreshed bool, err error) {
	outcome := "ok"
	switch {
	case err != nil:
		outcome = "failed"
		if r.span == nil {
			r.begin(ctx)
		}
	case !refreshed:
		outcome = "waited"
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.AddEvent("smart.refresh.waited", trace.WithAttributes(attrIssuer.String(r.issuer)))
		}
	}
	if r.span != nil {
		r.span.SetAttributes(attrOutcome.String(outcome))
		endSpan(r.span, err)
	}
	if r.tel.refreshes.Enabled(ctx) {
		attrs := []attribute.KeyValue{attrOutcome.String(outcome)}
		if r.issuer != "" {
			attrs = append(attrs, attrIssuer.String(r.metric))
		}
		if err != nil {
			attrs = append(attrs, attrErrorCode.String(errorType(err)))
		}
		r.tel.refreshes.Add(ctx, 1, metric.WithAttributes(attrs...))
	}
}

// launchType is the attribute that says whether a launch is an EHR launch
// or a standalone one.
func launchType(launch string) attribute.KeyValue {
	if launch == "" {
		return attrLaunchType.String("standalone")
	}
	return attrLaunchType.String("ehr")
}

// discoveryError is a failed discovery's error as its span records it:
// with CodeDiscoveryFailed, the code the caller's error gets.
func discoveryError(err error) error {
	if err == nil || errorCode(err) != "" {
		return err
	}
	return newError("discover", CodeDiscoveryFailed, "", err)
}
