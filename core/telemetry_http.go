package core

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/fhirware/smart/internal/fhirnames"
)

// The spans of the engine's requests to the EHR follow OpenTelemetry's
// HTTP client conventions (kind client; http.request.method, server.address,
// server.port, url.full, http.response.status_code, error.type), with two
// rules of their own: url.full has no query and no user info, and a FHIR
// URL has every id replaced by {id} (url.template says the same). The
// spans are made around the engine's own clients, so the address guard,
// the response caps and the same-origin redirect rule stay as they are.

// clientSpan starts the span of a request to the EHR, named by its
// method and, for a launch's FHIR request (fhirBase is the launch's FHIR
// base URL; nil for the others), its URL template, and puts the W3C
// traceparent of the span in the request's header when the global
// propagator writes one. req must be the engine's own (not a caller's).
func (t *telemetry) clientSpan(req *http.Request, fhirBase *url.URL, sameOrigin bool) (context.Context, trace.Span) {
	method := knownMethod(req.Method)
	ctx, span := t.tracer.Start(req.Context(), method, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		u := req.URL
		var template, resourceType string
		if fhirBase != nil {
			template, resourceType = fhirTemplate(fhirBase.Path, u, sameOrigin)
			span.SetName(method + " " + template)
		}
		attrs := []attribute.KeyValue{
			semconv.HTTPRequestMethodKey.String(method),
			semconv.ServerAddress(u.Hostname()),
			semconv.URLFull(redactedURL(u, template)),
		}
		if port := portOf(u); port != 0 {
			attrs = append(attrs, semconv.ServerPort(port))
		}
		if template != "" {
			attrs = append(attrs, semconv.URLTemplate(template))
		}
		if resourceType != "" {
			attrs = append(attrs, attrResourceType.String(resourceType))
		}
		span.SetAttributes(attrs...)
	}
	if tp := traceparent(ctx); tp != "" {
		req.Header.Set("Traceparent", tp)
	}
	return ctx, span
}

// endClientSpan ends a request's span with the answer's status, or the
// error: a status of 400 or more is an error, as the conventions say for
// clients.
func endClientSpan(span trace.Span, resp *http.Response, err error) {
	if span.IsRecording() {
		switch {
		case err != nil:
			failSpan(span, err)
		default:
			span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
			if resp.StatusCode >= 400 {
				typ := statusText(resp.StatusCode)
				span.SetAttributes(semconv.ErrorTypeKey.String(typ))
				span.SetStatus(codes.Error, typ)
			}
		}
	}
	span.End()
}

// do sends one of the engine's requests to the EHR's OAuth endpoints
// (discovery, token, revocation) through client, in a span.
func (t *telemetry) do(client *http.Client, req *http.Request) (*http.Response, error) {
	_, span := t.clientSpan(req, nil, false)
	resp, err := client.Do(req)
	endClientSpan(span, resp, err)
	return resp, err
}

// traceparent returns the W3C traceparent the global propagator writes for
// ctx's span, or "": nothing else it would write (baggage, tracestate,
// other formats) goes to an EHR, since an app's baggage may carry what
// only the app should see, and any EHR (with AllowAnyIssuer, any server
// on the internet) reads the headers it is sent.
func traceparent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	var c traceparentCarrier
	otel.GetTextMapPropagator().Inject(ctx, &c)
	return c.value
}

// traceparentCarrier is a propagation.TextMapCarrier that keeps only the
// traceparent header.
type traceparentCarrier struct{ value string }

func (c *traceparentCarrier) Get(string) string { return "" }
func (c *traceparentCarrier) Keys() []string    { return nil }
func (c *traceparentCarrier) Set(k, v string) {
	if strings.EqualFold(k, "traceparent") {
		c.value = v
	}
}

// traced sends a FHIR request through client in a client span, and
// records its duration by issuer host, method and status class. Both end
// when the answer's body has been read to its end or closed, as otelhttp's
// do: a large Bundle's time is in its body.
func (ft *fhirTransport) traced(client *http.Client, req *http.Request) (*http.Response, error) {
	start := time.Now()
	_, span := ft.engine.tel.clientSpan(req, ft.base, ft.sameOrigin(req.URL))
	resp, err := client.Do(req)
	recording := span.IsRecording() || ft.engine.tel.fhirDuration.Enabled(req.Context())
	if err != nil || !recording || resp.Body == nil || resp.Body == http.NoBody {
		ft.endFHIR(span, req, resp, err, start) // nothing to wait for, or nothing records it
		return resp, err
	}
	resp.Body = &tracedBody{ReadCloser: resp.Body, ft: ft, span: span, req: req, resp: resp, start: start}
	return resp, nil
}

// endFHIR ends a FHIR request's span and records its duration.
func (ft *fhirTransport) endFHIR(span trace.Span, req *http.Request, resp *http.Response, err error, start time.Time) {
	t := ft.engine.tel
	endClientSpan(span, resp, err)
	if ctx := req.Context(); t.fhirDuration.Enabled(ctx) {
		class := "none"
		if err == nil {
			class = strconv.Itoa(resp.StatusCode/100) + "xx"
		}
		t.fhirDuration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(
			attrIssuer.String(t.metricIssuer(ft.issuer.URL)),
			semconv.HTTPRequestMethodKey.String(knownMethod(req.Method)),
			attrStatusClass.String(class)))
	}
}

// tracedBody ends a FHIR request's span, and records its duration, at the
// end of its body or when it is closed, whichever comes first.
type tracedBody struct {
	io.ReadCloser
	once  sync.Once
	ft    *fhirTransport
	span  trace.Span
	req   *http.Request
	resp  *http.Response
	start time.Time
}

func (b *tracedBody) end() { b.ft.endFHIR(b.span, b.req, b.resp, nil, b.start) }

func (b *tracedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.end)
	}
	return n, err
}

func (b *tracedBody) Close() error {
	b.once.Do(b.end)
	return b.ReadCloser.Close()
}

// fhirTemplate returns the URL template of a FHIR request's path, every id
// replaced: "/fhir/Patient/{id}", "/fhir/Patient/{id}/_history/{vid}",
// "/fhir/Observation", "/fhir/Patient/{id}/$everything"; and the resource
// type it names, if any. On the FHIR server's origin the base path is
// kept; elsewhere (a fhirUser on another server) every segment that is not
// a resource type, an operation or a FHIR keyword is replaced, the base
// path's too.
func fhirTemplate(basePath string, u *url.URL, sameOrigin bool) (template, resourceType string) {
	p := u.EscapedPath()
	var b strings.Builder
	if sameOrigin {
		base := strings.TrimRight(basePath, "/")
		if rest, ok := strings.CutPrefix(p, base); ok && (rest == "" || rest[0] == '/') {
			b.WriteString(base)
			p = rest
		}
	}
	next := "" // what the next plain segment is: "{id}" after a type, "{vid}" after _history
	for seg := range strings.SplitSeq(strings.Trim(p, "/"), "/") {
		if seg == "" {
			continue
		}
		b.WriteByte('/')
		switch {
		case seg == "_history":
			b.WriteString(seg)
			next = "{vid}"
			continue
		case seg == "_search" || seg == "metadata" || isOperation(seg):
			b.WriteString(seg)
		case next != "":
			// After a type, an id whatever its shape ("Patient/Smith").
			b.WriteString(next)
		case isResourceType(seg):
			b.WriteString(seg)
			if resourceType == "" {
				resourceType = seg
			}
			next = "{id}"
			continue
		default:
			b.WriteString("{id}")
		}
		next = ""
	}
	if b.Len() == 0 {
		return "/", ""
	}
	return b.String(), resourceType
}

// isResourceType reports whether s is a resource type of FHIR R4. A
// segment that is only shaped as one ("JaneDoe", in a server's next link)
// may be a server's text, as an id may, and is replaced; so is a type R4
// does not name. A segment after a type is an id whatever its shape.
func isResourceType(s string) bool { return fhirnames.ResourceTypes[s] }

// isOperation reports whether s has the shape of a FHIR operation name
// as servers define them, such as $everything or $member-match: a lower
// case letter, then letters and hyphens. Anything else in its place (a
// digit, say, which ids and phone numbers have) is replaced.
func isOperation(s string) bool {
	if len(s) < 2 || len(s) > 40 || s[0] != '$' || s[1] < 'a' || s[1] > 'z' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-') {
			return false
		}
	}
	return true
}

// redactedURL is u without query, fragment and user info, with its path
// replaced by template when there is one.
func redactedURL(u *url.URL, template string) string {
	if template != "" {
		return u.Scheme + "://" + u.Host + template // {id} stays unescaped, as in url.template
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return r.String()
}

// portOf is u's port, explicit or the scheme's default; 0 if unknown.
func portOf(u *url.URL) int {
	if p := u.Port(); p != "" {
		n, _ := strconv.Atoi(p)
		return n
	}
	switch u.Scheme {
	case "https":
		return 443
	case "http":
		return 80
	}
	return 0
}

// knownMethod is the request's method, or "_OTHER" for one HTTP does not
// define (the conventions keep the attribute's values few).
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	case "":
		return http.MethodGet
	}
	return "_OTHER"
}

// statusText is an HTTP status as error.type has it: "404".
func statusText(status int) string { return strconv.Itoa(status) }

// tracedKeySet is an id_token key set (go-oidc's remote one) whose fetches
// of the issuer's JWKS are traced as children of the id_token
// verification that needed them. go-oidc fetches the keys with a context
// of its own, made when the key set was; the key set therefore keeps the
// contexts of the verifications in progress, and a fetch takes the first
// one's span as parent.
type tracedKeySet struct {
	oidc.KeySet
	tel *telemetry

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]context.Context
}

func newTracedKeySet(tel *telemetry) *tracedKeySet {
	return &tracedKeySet{tel: tel, waiting: map[uint64]context.Context{}}
}

// VerifySignature verifies jwt with the key set, keeping ctx for the span
// of a fetch it makes.
func (k *tracedKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	k.mu.Lock()
	id := k.next
	k.next++
	k.waiting[id] = ctx
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		delete(k.waiting, id)
		k.mu.Unlock()
	}()
	return k.KeySet.VerifySignature(ctx, jwt)
}

// parent returns the span context of the oldest verification in progress.
func (k *tracedKeySet) parent() trace.SpanContext {
	k.mu.Lock()
	defer k.mu.Unlock()
	var sc trace.SpanContext
	first := ^uint64(0)
	for id, ctx := range k.waiting {
		if id < first {
			first, sc = id, trace.SpanContextFromContext(ctx)
		}
	}
	return sc
}

// jwksTransport is the transport of go-oidc's JWKS fetches: a smart.jwks
// span, with the request's client span under it.
type jwksTransport struct {
	base http.RoundTripper
	keys *tracedKeySet
}

func (t *jwksTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tel := t.keys.tel
	ctx := trace.ContextWithSpanContext(req.Context(), t.keys.parent())
	ctx, span := tel.tracer.Start(ctx, spanJWKS)
	req = req.Clone(ctx) // a RoundTripper must not change the caller's request
	_, hs := tel.clientSpan(req, nil, false)
	resp, err := t.base.RoundTrip(req)
	endClientSpan(hs, resp, err)
	endSpan(span, err)
	return resp, err
}
