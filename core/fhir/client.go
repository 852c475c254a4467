package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// fhirJSON is FHIR's JSON media type, sent as Accept and Content-Type.
const fhirJSON = "application/fhir+json"

// maxAnswerBytes bounds the answers the client reads itself (reads,
// searches, writes, batches): 64 MiB, so that a hostile or broken server
// cannot make it read without end. An answer that claims or grows past it
// fails. Bodies that [Client.Do] returns are the caller's to bound.
const maxAnswerBytes = 64 << 20

// errTooLarge is the cause of an answer past maxAnswerBytes.
var errTooLarge = errors.New("the answer is larger than the client reads (64 MiB)")

// Client is a FHIR REST client for one FHIR server, named by its base URL.
// It sends every request through the *http.Client it was made with, which
// does what the server needs beyond FHIR (authentication, say), and bounds
// every request by the context given. A Client is safe for concurrent use.
type Client struct {
	base     *url.URL
	baseURL  string // base.String() without a trailing "/"
	basePath string // base.EscapedPath() without a trailing "/"
	hc       *http.Client
	accept   string // the Accept header sent: fhirJSON, with fhirVersion when WithVersion set one

	maxAnswer int64 // maxAnswerBytes; smaller in tests
}

// NewClient returns a Client for the FHIR server whose base URL is baseURL,
// such as "https://ehr.example/fhir/r4": an absolute http or https URL
// without query, fragment, user info or "." and ".." path segments. A
// trailing "/" is dropped. It sends requests through hc, or
// http.DefaultClient when hc is nil.
//
// hc's Transport decides what goes with each request. For a server that
// wants an OAuth 2.0 bearer token, pass oauth2.NewClient(ctx, tokenSource)
// (golang.org/x/oauth2), or a launch's client from core's
// ReadyClient.FHIR, which adds the launch's token on the server's origin
// only and refreshes it.
func NewClient(baseURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, &Error{Err: errors.New("the base URL is malformed")}
	}
	switch {
	case !strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https"):
		return nil, &Error{Err: errors.New("the base URL is not an absolute http or https URL")}
	case u.Host == "":
		return nil, &Error{Err: errors.New("the base URL has no host")}
	case u.User != nil:
		return nil, &Error{Err: errors.New("the base URL has user info; give credentials to the HTTP client instead")}
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, &Error{Err: errors.New("the base URL has a query or a fragment")}
	case hasDotSegment(u.Path):
		return nil, &Error{Err: errors.New(`the base URL has a "." or ".." path segment`)}
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Path, u.RawPath = strings.TrimRight(u.Path, "/"), strings.TrimRight(u.RawPath, "/")
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: u, baseURL: u.String(), basePath: u.EscapedPath(), hc: hc, accept: fhirJSON, maxAnswer: maxAnswerBytes}, nil
}

// WithVersion returns a copy of c that asks the server for FHIR version
// version, such as "4.0.1" (a CapabilityStatement's fhirVersion): its
// requests carry Accept: application/fhir+json; fhirVersion=4.0, the
// major.minor form of FHIR's version parameter
// (https://hl7.org/fhir/R4/http.html#version-parameter), so that a
// server serving several versions at one base URL answers in this one,
// or with 406. An empty version, or one that is not a FHIR version
// (digits, a dot, digits, and optionally more), gives a copy that sends
// no version, as c does by default. c itself is not changed.
func (c *Client) WithVersion(version string) *Client {
	d := *c
	d.accept = fhirJSON
	if mm := majorMinor(version); mm != "" {
		d.accept = fhirJSON + "; fhirVersion=" + mm
	}
	return &d
}

// majorMinor returns the major.minor form of a FHIR version ("4.0" of
// "4.0.1", "5.0" of "5.0.0-ballot"), or "" when v is not a version.
func majorMinor(v string) string {
	if len(v) > 64 {
		return ""
	}
	number, _, _ := strings.Cut(v, "-") // a label, such as "-ballot", is not in the parameter
	parts := strings.Split(number, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return ""
	}
	for _, p := range parts {
		if !digits(p) {
			return ""
		}
	}
	return parts[0] + "." + parts[1]
}

// digits reports whether s is one to three decimal digits.
func digits(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// BaseURL returns the FHIR base URL, without a trailing "/".
func (c *Client) BaseURL() string { return c.baseURL }

// HTTPClient returns the *http.Client the Client sends requests through,
// as given to NewClient (http.DefaultClient for nil), for use with other
// FHIR libraries.
func (c *Client) HTTPClient() *http.Client { return c.hc }

// Do sends req through the client's HTTP client and returns the response,
// whatever its status, as http.Client.Do does: the caller closes its body,
// after reading it to its end so that the connection is kept for the next
// request. The body is not bounded: read it through io.LimitReader or
// http.MaxBytesReader when the server is not trusted.
//
// It sets Accept: application/fhir+json (with the version of
// [Client.WithVersion], if any) on a copy of req when req has no Accept
// header; req itself is never modified. req goes to its own URL,
// which may be any (unlike [Client.Read], which stays on the base URL's
// origin): whatever hc's Transport adds goes with it. The request is
// bounded by req.Context(), as with any *http.Client. A request that gets
// no answer fails with an *Error whose Err is the HTTP client's error.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Accept") == "" {
		out := req.Clone(req.Context())
		if out.Header == nil {
			out.Header = make(http.Header)
		}
		out.Header.Set("Accept", c.accept)
		req = out
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, transportError(req, c.resourceOf(req.URL), err)
	}
	return resp, nil
}

// answer is a server's answer as the client read it.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// exchange sends a request the client built, with Accept set, reads the
// answer (up to maxAnswerBytes) and turns an answer that is not 2xx into
// an *Error with its OperationOutcome. resource is the Error's Resource
// and words what to take out of the server's text (see requestWords),
// nil for the request's own.
func (c *Client) exchange(req *http.Request, resource string, words []string) (*answer, error) {
	req.Header.Set("Accept", c.accept)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, transportError(req, resource, err)
	}
	defer resp.Body.Close()
	fail := &Error{Method: req.Method, Resource: resource, StatusCode: resp.StatusCode}
	if resp.ContentLength > c.maxAnswer {
		fail.Err = errTooLarge
		return nil, fail
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxAnswer+1))
	switch {
	case err != nil:
		fail.Err = fmt.Errorf("reading the answer: %w", err)
		return nil, fail
	case int64(len(body)) > c.maxAnswer:
		fail.Err = errTooLarge
		return nil, fail
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		if words == nil {
			words = requestWords(c.basePath, req.URL)
		}
		fail.Outcome = decodeOutcome(body)
		fail.said = outcomeText(fail.Outcome, words)
		return nil, fail
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// maxOutcomeBytes bounds the OperationOutcome the client decodes. An
// outcome explains a failure in a few issues; decoding a large one costs
// far more memory than its bytes ({} is an issue of its own), so a larger
// body is left undecoded.
const maxOutcomeBytes = 64 << 10

// decodeOutcome returns body as an OperationOutcome, or nil when it is not
// one, or too large to be one (maxOutcomeBytes).
func decodeOutcome(body []byte) *OperationOutcome {
	var oo OperationOutcome
	if len(body) > maxOutcomeBytes || json.Unmarshal(body, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		return nil
	}
	return &oo
}

// getJSON sends GET u and decodes a 2xx JSON answer into v (when v is not
// nil and the answer has a body). It returns the answer's status. words are
// what to take out of the server's text besides the request's own (see
// requestWords).
func (c *Client) getJSON(ctx context.Context, u *url.URL, v any, words ...string) (int, error) {
	resource := c.resourceOf(u)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, &Error{Method: http.MethodGet, Resource: resource, Err: err}
	}
	if len(words) > 0 {
		words = append(requestWords(c.basePath, u), words...)
	}
	a, err := c.exchange(req, resource, words)
	if err != nil {
		return 0, err
	}
	if v != nil && len(a.body) > 0 {
		if err := json.Unmarshal(a.body, v); err != nil {
			return 0, &Error{Method: http.MethodGet, Resource: resource, StatusCode: a.status, Err: fmt.Errorf("malformed JSON: %w", err)}
		}
	}
	return a.status, nil
}

// Read fetches a resource by reference and decodes its JSON into v. ref is
// relative to the base URL ("Patient/123", or a path with a query such as
// "Observation/$lastn?code=8867-4"), or an absolute URL on the base URL's
// origin. No path may have a "." or ".." segment, and a relative one may
// not name a host ("//host/…"): such a reference fails before any request.
//
// An absolute URL on another origin fails with an *Error wrapping
// ErrForeignReference, and nothing is sent: the HTTP client may carry
// credentials meant for this server only, and a reference may come from a
// resource a server sent. To read a resource on another server (a
// [Reference] with a URL), use a Client for that server.
//
// A 404 or 410 answer gives an error for which errors.Is(err, ErrNotFound)
// holds; every error status gives an *Error with the StatusCode and the
// server's OperationOutcome. v is left as it was on any error status.
func (c *Client) Read(ctx context.Context, ref string, v any) error {
	u, err := c.resolve(ref)
	if err != nil {
		return &Error{Method: http.MethodGet, Resource: c.refType(ref), Err: err}
	}
	_, err = c.getJSON(ctx, u, v)
	return err
}

// Read fetches the resource at ref, as [Client.Read] does, and returns it
// decoded into a new T:
//
//	p, err := fhir.Read[Patient](ctx, c, "Patient/123")
//
// On error it returns T's zero value.
func Read[T any](ctx context.Context, c *Client, ref string) (T, error) {
	var v T
	if err := c.Read(ctx, ref, &v); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// resolve turns a reference or path relative to the base URL
// ("Patient/1", "Observation?patient=1") into a URL; an absolute URL must
// be on the base URL's origin. No path, relative or absolute, may have a
// "." or ".." segment (percent-encoded or not): "Observation/.." would
// name the FHIR base, and an absolute URL could climb out of it. Relative
// paths may not name another host with "//host". No error names the
// reference: it may hold an id.
func (c *Client) resolve(ref string) (*url.URL, error) {
	if r, ok := ParseReference("", ref); ok && ref == r.Type+"/"+r.ID {
		// "Type/id", the common case: nothing to check beyond its form.
		return url.Parse(c.baseURL + "/" + ref)
	}
	u, err := url.Parse(ref)
	switch {
	case err != nil || ref == "":
		return nil, fmt.Errorf("%w: it is malformed", ErrInvalidReference)
	case hasDotSegment(u.Path) || hasDotSegment(u.Opaque):
		return nil, fmt.Errorf(`%w: it has a "." or ".." path segment`, ErrInvalidReference)
	case u.IsAbs() && !c.sameOrigin(u):
		return nil, fmt.Errorf("%w (%s), not the base URL's (%s)", ErrForeignReference, origin(u), origin(c.base))
	case u.IsAbs():
		return u, nil
	case u.Host != "" || strings.HasPrefix(ref, "//"):
		return nil, fmt.Errorf("%w: it names a host but no scheme", ErrInvalidReference)
	}
	return url.Parse(c.baseURL + "/" + strings.TrimLeft(ref, "/"))
}

// sameOrigin reports whether u is on the base URL's origin: scheme, host
// and port.
func (c *Client) sameOrigin(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, c.base.Scheme) && strings.EqualFold(u.Host, c.base.Host)
}

// origin is u's scheme and host, printable and short, for a cause's
// message; never its path or query.
func origin(u *url.URL) string {
	return quote(u.Scheme + "://" + u.Host)
}

// resourceOf is the Error.Resource of a request to u: its first path
// segment under the base URL, when that is an R4 resource type.
func (c *Client) resourceOf(u *url.URL) string {
	if !c.sameOrigin(u) {
		return ""
	}
	path := u.EscapedPath()
	if !strings.HasPrefix(path, c.basePath+"/") {
		return ""
	}
	first, _, _ := strings.Cut(path[len(c.basePath)+1:], "/")
	return knownType(first)
}

// refType is the Error.Resource of a reference that failed before any
// request: its type, when it starts with an R4 resource type.
func (c *Client) refType(ref string) string {
	if r, ok := ParseReference(c.baseURL, ref); ok {
		return knownType(r.Type)
	}
	first, _, _ := strings.Cut(ref, "/")
	first, _, _ = strings.Cut(first, "?")
	return knownType(first)
}
