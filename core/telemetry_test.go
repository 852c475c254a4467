package core_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/fhir"
	"github.com/fhirware/smart/core/smarttest"
)

// otelSDK is an OpenTelemetry SDK that keeps every span and metric in
// memory, for the tests to read.
type otelSDK struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
}

func newOtelSDK(t testing.TB) *otelSDK {
	s := &otelSDK{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	s.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.spans))
	s.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.reader))
	t.Cleanup(func() { s.tp.Shutdown(context.Background()); s.mp.Shutdown(context.Background()) })
	return s
}

// configure makes a Config use the SDK's providers.
func (s *otelSDK) configure(c *core.Config) { c.TracerProvider, c.MeterProvider = s.tp, s.mp }

// named returns the ended spans called name.
func (s *otelSDK) named(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, sp := range s.spans.Ended() {
		if sp.Name() == name {
			out = append(out, sp)
		}
	}
	return out
}

// one returns the one ended span called name whose parent is parent.
func (s *otelSDK) one(t *testing.T, name string, parent trace.SpanContext) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, sp := range s.named(name) {
		if sp.Parent().SpanID() == parent.SpanID() {
			found = append(found, sp)
		}
	}
	if len(found) != 1 {
		var all []string
		for _, sp := range s.spans.Ended() {
			all = append(all, fmt.Sprintf("%s (parent %s)", sp.Name(), sp.Parent().SpanID()))
		}
		t.Fatalf("%d spans %q under %s, want 1; spans: %v", len(found), name, parent.SpanID(), all)
	}
	return found[0]
}

// attr returns a span's attribute.
func attr(sp sdktrace.ReadOnlySpan, k string) (attribute.Value, bool) {
	for _, kv := range sp.Attributes() {
		if string(kv.Key) == k {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func wantAttr(t *testing.T, sp sdktrace.ReadOnlySpan, k string, want any) {
	t.Helper()
	v, ok := attr(sp, k)
	if !ok {
		t.Errorf("span %s has no %s; attributes %v", sp.Name(), k, sp.Attributes())
		return
	}
	if got := v.AsInterface(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("span %s: %s = %v, want %v", sp.Name(), k, got, want)
	}
}

// metrics collects the metrics.
func (s *otelSDK) metrics(t testing.TB) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := s.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

// count returns the value of a counter's point with the attributes attrs
// (all of the point's), or the count of a histogram's.
func (s *otelSDK) count(t testing.TB, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	want := attribute.NewSet(attrs...)
	for _, sm := range s.metrics(t).ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if p.Attributes.Equals(&want) {
						return p.Value
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if p.Attributes.Equals(&want) {
						return int64(p.Count)
					}
				}
			}
		}
	}
	return 0
}

// One launch, its callback on another instance, the ready step and a FHIR
// read, under one span of the app's: every step is a span with the right
// parent and attributes, the requests to the EHR are client spans under
// them and carry the W3C traceparent and nothing else of the app's
// context, and the metrics count the launch, the callback and the read.
func TestTelemetryOfALaunch(t *testing.T) {
	// The global propagator writes traceparent and baggage: only the
	// first may leave for the EHR.
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	sdk := newOtelSDK(t)
	h := newHarness(t, smarttest.Options{}, smarttest.Client{ID: "app"}, core.Config{}, core.Issuer{})
	cfg := h.eng.Config()
	sdk.configure(&cfg)
	seen := &outboundRecorder{}
	cfg.HTTPClient = seen.client()
	engA, err := core.New(cfg) // two instances sharing the store
	if err != nil {
		t.Fatal(err)
	}
	engB, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	member, _ := baggage.NewMember("user", "baggage-must-stay")
	bag, _ := baggage.New(member)
	ctx := baggage.ContextWithBaggage(context.Background(), bag)
	ctx, root := sdk.tp.Tracer("test").Start(ctx, "request")

	iss := h.ehr.FHIRBaseURL()
	authURL, err := engA.Launch(ctx, "browser-1", iss, h.ehr.NewLaunch(smarttest.LaunchContext{Patient: "pat-1", FHIRUser: "Practitioner/prac-1"}))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := engB.Callback(ctx, "browser-1", authorize(t, authURL))
	if err != nil {
		t.Fatal(err)
	}
	rc, err = engB.Ready(ctx, "browser-1", rc.Handle())
	if err != nil {
		t.Fatal(err)
	}
	var p struct{ ID string }
	if err := rc.FHIR().Read(ctx, rc.Patient().String(), &p); err != nil || p.ID != "pat-1" {
		t.Fatalf("Read: %+v, %v", p, err)
	}
	root.End()

	rootSC := root.SpanContext()
	host := strings.TrimPrefix(h.ehr.URL(), "http://")
	u, _ := url.Parse(h.ehr.URL())

	launch := sdk.one(t, "smart.launch", rootSC)
	wantAttr(t, launch, "smart.issuer", host)
	wantAttr(t, launch, "smart.launch.type", "ehr")
	disc := sdk.one(t, "smart.discovery", launch.SpanContext())
	get := sdk.one(t, "GET", disc.SpanContext())
	wantAttr(t, get, "url.full", iss+"/.well-known/smart-configuration")
	wantAttr(t, get, "http.response.status_code", 200)
	wantAttr(t, get, "server.address", u.Hostname())
	wantAttr(t, get, "server.port", u.Port())
	if get.SpanKind() != trace.SpanKindClient {
		t.Errorf("the request's span is of kind %s, want client", get.SpanKind())
	}

	callback := sdk.one(t, "smart.callback", rootSC)
	wantAttr(t, callback, "smart.issuer", host)
	sdk.one(t, "smart.discovery", callback.SpanContext()) // instance B had not discovered the issuer
	token := sdk.one(t, "smart.token", callback.SpanContext())
	wantAttr(t, token, "smart.grant_type", "authorization_code")
	post := sdk.one(t, "POST", token.SpanContext())
	wantAttr(t, post, "url.full", h.ehr.TokenURL())
	verify := sdk.one(t, "smart.id_token.verify", callback.SpanContext())
	jwks := sdk.one(t, "smart.jwks", verify.SpanContext())
	wantAttr(t, sdk.one(t, "GET", jwks.SpanContext()), "url.full", h.ehr.JWKSURL())
	if !hasEvent(callback, "smart.store.take") && !hasEvent(callback, "smart.store.get") {
		t.Errorf("the callback's span has no storage event: %v", callback.Events())
	}

	ready := sdk.one(t, "smart.ready", rootSC)
	if !hasEvent(ready, "smart.store.get") {
		t.Errorf("the ready span has no smart.store.get event: %v", ready.Events())
	}
	read := sdk.one(t, "GET /fhir/Patient/{id}", rootSC)
	wantAttr(t, read, "url.full", iss+"/Patient/{id}")
	wantAttr(t, read, "url.template", "/fhir/Patient/{id}")
	wantAttr(t, read, "smart.fhir.resource_type", "Patient")
	wantAttr(t, read, "http.request.method", "GET")
	wantAttr(t, read, "http.response.status_code", 200)
	for _, sp := range sdk.spans.Ended() {
		if sp.SpanContext().TraceID() != rootSC.TraceID() {
			t.Errorf("span %s is in another trace", sp.Name())
		}
		if sp.Status().Code == codes.Error {
			t.Errorf("span %s failed: %v", sp.Name(), sp.Attributes())
		}
	}

	// Every request to the EHR carried its span's traceparent, and no
	// baggage.
	reqs := seen.all()
	if len(reqs) < 5 {
		t.Fatalf("the EHR saw %d requests, want discovery twice, token, JWKS and the read", len(reqs))
	}
	for _, r := range reqs {
		tp := r.header.Get("Traceparent")
		if !strings.Contains(tp, rootSC.TraceID().String()) {
			t.Errorf("%s %s carried traceparent %q, want one of trace %s", r.method, r.path, tp, rootSC.TraceID())
		}
		if r.header.Get("Baggage") != "" || r.header.Get("Tracestate") != "" {
			t.Errorf("%s %s carried the app's baggage or tracestate: %v", r.method, r.path, r.header)
		}
	}

	issuer := attribute.String("smart.issuer", host)
	if n := sdk.count(t, "smart.launches", attribute.String("smart.outcome", "ok"), issuer); n != 1 {
		t.Errorf("smart.launches{ok} = %d, want 1", n)
	}
	if n := sdk.count(t, "smart.callbacks", attribute.String("smart.outcome", "ok"), issuer); n != 1 {
		t.Errorf("smart.callbacks{ok} = %d, want 1", n)
	}
	if n := sdk.count(t, "smart.fhir.request.duration", issuer, attribute.String("http.request.method", "GET"),
		attribute.String("smart.http.status_class", "2xx")); n != 1 {
		t.Errorf("smart.fhir.request.duration{GET, 2xx} counts %d requests, want 1", n)
	}
	if n := sdk.count(t, "smart.store.operation.duration", attribute.String("smart.store.operation", "set")); n < 3 {
		t.Errorf("smart.store.operation.duration{set} counts %d, want the pending launch, the launch and the index", n)
	}
}

func hasEvent(sp sdktrace.ReadOnlySpan, name string) bool {
	for _, e := range sp.Events() {
		if e.Name == name {
			return true
		}
	}
	return false
}

// A token endpoint that fails makes the token span and the callback span
// fail with smart.error.code, the request's span with its status, and
// counts the callback by its code.
func TestTelemetryOfAFailingTokenEndpoint(t *testing.T) {
	t.Parallel()
	sdk := newOtelSDK(t)
	h := newHarness(t, smarttest.Options{}, smarttest.Client{ID: "app"},
		core.Config{TracerProvider: sdk.tp, MeterProvider: sdk.mp, MaxRetries: -1}, core.Issuer{})
	cb := h.launch("browser-1", &smarttest.LaunchContext{Patient: "pat-1"})
	h.ehr.SetFaults(smarttest.Faults{Status: map[smarttest.Endpoint]int{smarttest.EndpointToken: 503}})
	_, err := h.eng.Callback(context.Background(), "browser-1", cb)
	wantCode(t, err, core.CodeTokenExchangeFailed)

	callback := sdk.named("smart.callback")
	if len(callback) != 1 {
		t.Fatalf("%d callback spans, want 1", len(callback))
	}
	token := sdk.one(t, "smart.token", callback[0].SpanContext())
	for _, sp := range []sdktrace.ReadOnlySpan{callback[0], token} {
		if sp.Status().Code != codes.Error {
			t.Errorf("span %s has status %v, want Error", sp.Name(), sp.Status())
		}
		wantAttr(t, sp, "smart.error.code", "token_exchange_failed")
		wantAttr(t, sp, "error.type", "token_exchange_failed")
	}
	post := sdk.one(t, "POST", token.SpanContext())
	wantAttr(t, post, "http.response.status_code", 503)
	wantAttr(t, post, "error.type", "503")
	if post.Status().Code != codes.Error {
		t.Errorf("the token request's span has status %v, want Error", post.Status())
	}
	host := strings.TrimPrefix(h.ehr.URL(), "http://")
	if n := sdk.count(t, "smart.callbacks", attribute.String("smart.outcome", "token_exchange_failed"), attribute.String("smart.issuer", host)); n != 1 {
		t.Errorf("smart.callbacks{token_exchange_failed} = %d, want 1", n)
	}
}

// 100 concurrent requests on an expired token make one refresh: one
// refresh span, with the token request under it, and smart.refreshes
// counting one ok and no failure.
func TestTelemetryOfConcurrentRefreshes(t *testing.T) {
	t.Parallel()
	sdk := newOtelSDK(t)
	env := launchForFHIR(t, fhirSetup{config: sdk.configure, quiet: true})
	env.clock.Advance(2 * time.Hour)
	env.ehr.SetFaults(smarttest.Faults{Latency: 20 * time.Millisecond})

	const n = 100
	atOnce(t, n, func(i int) error {
		rc, err := env.eng.Ready(context.Background(), env.browser, env.handle)
		if err == nil {
			var p fhirPatient
			err = readPatient(context.Background(), rc, &p)
		}
		if err != nil {
			return fmt.Errorf("request %d: %w", i, err)
		}
		return nil
	})
	if got := env.ehr.Count(smarttest.EndpointTokenRefresh); got != 1 {
		t.Fatalf("%d refreshes at the EHR, want 1", got)
	}
	refresh := sdk.named("smart.refresh")
	if len(refresh) != 1 {
		t.Fatalf("%d refresh spans, want 1", len(refresh))
	}
	wantAttr(t, refresh[0], "smart.outcome", "ok")
	token := sdk.one(t, "smart.token", refresh[0].SpanContext())
	wantAttr(t, token, "smart.grant_type", "refresh_token")
	if parents := sdk.named("smart.ready"); !containsSpan(parents, refresh[0].Parent()) {
		t.Errorf("the refresh span's parent is not one of the ready spans")
	}
	host := strings.TrimPrefix(env.base, "http://")
	host, _, _ = strings.Cut(host, "/")
	issuer := attribute.String("smart.issuer", host)
	if got := sdk.count(t, "smart.refreshes", attribute.String("smart.outcome", "ok"), issuer); got != 1 {
		t.Errorf("smart.refreshes{ok} = %d, want 1", got)
	}
	if got := sdk.count(t, "smart.refreshes", attribute.String("smart.outcome", "failed"), issuer); got != 0 {
		t.Errorf("smart.refreshes{failed} = %d, want 0", got)
	}
	if got := sdk.count(t, "smart.fhir.request.duration", issuer, attribute.String("http.request.method", "GET"),
		attribute.String("smart.http.status_class", "2xx")); got != n {
		t.Errorf("smart.fhir.request.duration counts %d reads, want %d", got, n)
	}
	if got := len(sdk.named("smart.ready")); got != n+1 { // the launch's own Ready too
		t.Errorf("%d ready spans, want %d", got, n+1)
	}
}

func containsSpan(spans []sdktrace.ReadOnlySpan, sc trace.SpanContext) bool {
	for _, sp := range spans {
		if sp.SpanContext().SpanID() == sc.SpanID() {
			return true
		}
	}
	return false
}

// outboundRecorder is the transport of an engine's HTTP client that keeps
// the method, path and headers of every request.
type outboundRecorder struct {
	mu   sync.Mutex
	reqs []recordedRequest
}

type recordedRequest struct {
	method, path string
	header       http.Header
}

func (r *outboundRecorder) client() *http.Client { return &http.Client{Transport: r} }

func (r *outboundRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, recordedRequest{req.Method, req.URL.Path, req.Header.Clone()})
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (r *outboundRecorder) all() []recordedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedRequest(nil), r.reqs...)
}

// An engine that takes the global provider by default makes no ready span
// while no SDK is installed, and makes them once one is, as the global
// provider's other users do.
func TestTelemetryGlobalProviderInstalledLater(t *testing.T) {
	h := newHarness(t, smarttest.Options{}, smarttest.Client{ID: "app"}, core.Config{}, core.Issuer{})
	rc := h.complete("browser-1", &smarttest.LaunchContext{Patient: "pat-1"})
	if _, err := h.eng.Ready(context.Background(), "browser-1", rc.Handle()); err != nil {
		t.Fatal(err)
	}
	sdk := newOtelSDK(t)
	otel.SetTracerProvider(sdk.tp)
	t.Cleanup(func() { otel.SetTracerProvider(tracenoop.NewTracerProvider()) })
	if _, err := h.eng.Ready(context.Background(), "browser-1", rc.Handle()); err != nil {
		t.Fatal(err)
	}
	ready := sdk.named("smart.ready")
	if len(ready) != 1 {
		t.Fatalf("%d ready spans once the SDK is installed, want 1", len(ready))
	}
	if !hasEvent(ready[0], "smart.store.get") {
		t.Errorf("the ready span has no smart.store.get event: %v", ready[0].Events())
	}
}

// A Backend Services read is traced as a launch's: the client_credentials
// token request, then the FHIR request, under the app's span, and the
// token kept in the store shows as storage events.
func TestTelemetryOfBackendServices(t *testing.T) {
	t.Parallel()
	sdk := newOtelSDK(t)
	env := newBackendEnv(t, backendSetup{cfg: core.Config{TracerProvider: sdk.tp, MeterProvider: sdk.mp}})
	ctx, root := sdk.tp.Tracer("test").Start(context.Background(), "job")
	c, err := env.eng.Backend(ctx, env.iss, backendScope)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := fhir.Read[fhirPatient](ctx, c, "Patient/pat-2"); err != nil || p.ID != "pat-2" {
		t.Fatalf("Read: %+v, %v", p, err)
	}
	root.End()
	token := sdk.one(t, "smart.token", root.SpanContext())
	wantAttr(t, token, "smart.grant_type", "client_credentials")
	sdk.one(t, "POST", token.SpanContext())
	read := sdk.one(t, "GET /fhir/Patient/{id}", root.SpanContext())
	wantAttr(t, read, "http.response.status_code", 200)
	if n := sdk.count(t, "smart.store.operation.duration", attribute.String("smart.store.operation", "set")); n != 1 {
		t.Errorf("smart.store.operation.duration{set} counts %d, want the token's one", n)
	}
}

// Two instances that find one launch's token expired at once: the one that
// takes Config.Locker's lock refreshes, in a refresh span with the lock
// wait under it; the other waits for the lock, finds the token refreshed
// and counts as waited, with no refresh span; no lock stays counted as
// held.
func TestTelemetryOfARefreshAcrossInstances(t *testing.T) {
	t.Parallel()
	sdk := newOtelSDK(t)
	h, other, _ := twoInstances(t, smarttest.Options{}, core.Config{TracerProvider: sdk.tp, MeterProvider: sdk.mp})
	handle := h.complete("b", &pat1).Handle()
	h.clock.Advance(2 * time.Hour)
	h.ehr.SetFaults(smarttest.Faults{Latency: 20 * time.Millisecond})
	// Both Ready calls read the expired launch before either refreshes.
	var reads sync.WaitGroup
	reads.Add(2)
	var first atomic.Int32
	h.store.setOnGet(func(key string) {
		if strings.HasPrefix(key, "launch:") && first.Add(1) <= 2 {
			reads.Done()
			reads.Wait()
		}
	})
	var wg sync.WaitGroup
	for _, eng := range []*core.Engine{h.eng, other} {
		wg.Go(func() {
			if _, err := eng.Ready(context.Background(), "b", handle); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := h.ehr.Count(smarttest.EndpointTokenRefresh); got != 1 {
		t.Fatalf("%d refreshes at the EHR, want 1", got)
	}
	refresh := sdk.named("smart.refresh")
	if len(refresh) != 1 {
		t.Fatalf("%d refresh spans, want 1", len(refresh))
	}
	sdk.one(t, "smart.refresh.lock_wait", refresh[0].SpanContext())
	ok := sdk.count(t, "smart.refreshes", attribute.String("smart.outcome", "ok"), attribute.String("smart.issuer", strings.TrimPrefix(h.ehr.URL(), "http://")))
	waited := sdk.count(t, "smart.refreshes", attribute.String("smart.outcome", "waited"), attribute.String("smart.issuer", strings.TrimPrefix(h.ehr.URL(), "http://")))
	if ok != 1 || waited != 1 {
		t.Errorf("smart.refreshes: ok %d, waited %d; want 1 and 1", ok, waited)
	}
	if n := sdk.count(t, "smart.refresh.locks.active"); n != 0 {
		t.Errorf("smart.refresh.locks.active = %d after the refresh, want 0", n)
	}
}

// An engine built after the app installed its SDK as the global provider
// (the usual order: telemetry set up first, then the app's parts) takes
// that provider by default and makes ready spans with it.
func TestTelemetryGlobalProviderInstalledBefore(t *testing.T) {
	sdk := newOtelSDK(t)
	otel.SetTracerProvider(sdk.tp)
	t.Cleanup(func() { otel.SetTracerProvider(tracenoop.NewTracerProvider()) })
	h := newHarness(t, smarttest.Options{}, smarttest.Client{ID: "app"}, core.Config{}, core.Issuer{})
	rc := h.complete("browser-1", &smarttest.LaunchContext{Patient: "pat-1"})
	if _, err := h.eng.Ready(context.Background(), "browser-1", rc.Handle()); err != nil {
		t.Fatal(err)
	}
	if n := len(sdk.named("smart.ready")); n != 1 {
		t.Fatalf("%d ready spans with the SDK installed before core.New, want 1", n)
	}
	if n := len(sdk.named("smart.callback")); n != 1 {
		t.Errorf("%d callback spans, want 1", n)
	}
}

// A FHIR request's span and duration end with its answer's body, not its
// header, as otelhttp's do: a large Bundle's time is in its body. The span
// is not ended while the body is unread, and is ended once it is read to
// its end; closing a body unread ends it too.
func TestTelemetryFHIRSpanEndsWithTheBody(t *testing.T) {
	t.Parallel()
	sdk := newOtelSDK(t)
	env := newBackendEnv(t, backendSetup{cfg: core.Config{TracerProvider: sdk.tp, MeterProvider: sdk.mp}})
	ctx := context.Background()
	c, err := env.eng.Backend(ctx, env.iss, backendScope)
	if err != nil {
		t.Fatal(err)
	}
	const name = "GET /fhir/Patient/{id}"
	for _, read := range []bool{true, false} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.iss+"/Patient/pat-1", nil)
		if err != nil {
			t.Fatal(err)
		}
		before := len(sdk.named(name))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(sdk.named(name)); n != before {
			t.Fatalf("the FHIR span ended with the answer's header (%d ended, %d before), before its body was read", n, before)
		}
		if read {
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				t.Fatal(err)
			}
		}
		resp.Body.Close()
		if n := len(sdk.named(name)); n != before+1 {
			t.Fatalf("read=%v: %d FHIR spans ended after the body, want %d", read, n, before+1)
		}
	}
	u, _ := url.Parse(env.iss)
	if n := sdk.count(t, "smart.fhir.request.duration", attribute.String("smart.issuer", u.Host),
		attribute.String("http.request.method", "GET"), attribute.String("smart.http.status_class", "2xx")); n != 2 {
		t.Errorf("smart.fhir.request.duration counts %d, want 2", n)
	}
}
