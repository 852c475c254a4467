package core

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

// FHIR media type sent as Accept and Content-Type.
const fhirJSON = "application/fhir+json"

// Do sends req with the launch's bearer token and returns the response,
// whatever its status; the caller closes its body. The token, and the
// issuer's extra headers (Issuer.Header), are added only when req goes to
// the launch's FHIR server origin (scheme, host and port): a request to any
// other origin goes without them, and an Authorization header the caller
// set on it is dropped. req itself is never modified.
//
// A request to another origin must be https, or http with
// Config.AllowInsecureHTTP: any other fails with CodeInvalidRequest and is
// not sent. Unless Config.AllowPrivateNetworks is set, it connects only to
// public addresses (see Config.AllowAnyIssuer), in allowlist mode too,
// where the FHIR server itself may be on a private network: a refused
// address fails with CodeFHIRRequestFailed. Such a request goes through a
// client whose Transport is a clone of Config.HTTPClient's; when that
// Transport is not an *http.Transport, which the address check needs,
// every request to another origin fails, unless AllowPrivateNetworks is
// set.
//
// A token about to expire is refreshed first; a 401 answer refreshes once
// and retries with the new token, when the request body can be replayed
// (req.GetBody is set, as http.NewRequest does for in-memory bodies).
// Concurrent requests of one launch share one refresh, and a request that
// finds the launch refreshed meanwhile (by another request or app
// instance) uses that token instead of refreshing again.
//
// Response bodies are capped at Config.MaxFHIRResponseBytes: reading past
// the cap fails. As with http.Client.Do, the caller must close the body;
// read it to its end first, so that its connection is kept for the next
// request (see Config.MaxIdleConnsPerEHR). Every request is bounded by ctx and by the engine's HTTP
// client timeout (defaultHTTPTimeout unless Config.HTTPClient sets its
// own).
func (rc *ReadyClient) Do(ctx context.Context, req *http.Request) (*http.Response, error) {
	return rc.do(ctx, req, false)
}

// do is Do; owned reports that req was made by the ReadyClient itself (Read,
// Search, the writes), so it may be sent without a copy.
func (rc *ReadyClient) do(ctx context.Context, req *http.Request, owned bool) (*http.Response, error) {
	if !rc.sameOrigin(req.URL) {
		if err := rc.checkOutside(req); err != nil {
			if req.Body != nil {
				req.Body.Close() // as http.Client.Do would
			}
			return nil, err
		}
		out := req.Clone(ctx)
		out.Header.Del("Authorization")
		return rc.roundTrip(out)
	}
	tok, err := rc.accessToken(ctx)
	if err != nil {
		if req.Body != nil {
			req.Body.Close() // as http.Client.Do would
		}
		return nil, err
	}
	resp, err := rc.send(ctx, req, tok, owned)
	// A 401 refreshes the token and retries. The token that comes back may
	// be one another request stored meanwhile rather than a new one; when
	// that one is refused too, the request refreshes and retries once more.
	// A request never makes more than one refresh of its own.
	for retries := 0; err == nil && resp.StatusCode == http.StatusUnauthorized && retries < 2; retries++ {
		if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
			return resp, nil // cannot replay the body; the caller sees the 401
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		var refreshed bool
		if tok, refreshed, err = rc.refresh(ctx, "fhir", tok); err != nil {
			return nil, err
		}
		retry, retryOwned := req, owned
		if req.GetBody != nil {
			retry, retryOwned = req.Clone(ctx), true
			if retry.Body, err = req.GetBody(); err != nil {
				return nil, newError("fhir", CodeFHIRRequestFailed, "replaying the request body", err)
			}
		}
		resp, err = rc.send(ctx, retry, tok, retryOwned)
		if refreshed {
			break
		}
	}
	return resp, err
}

// send sends req (a copy of it unless owned) to the FHIR origin with the
// issuer's headers and the bearer token.
func (rc *ReadyClient) send(ctx context.Context, req *http.Request, tok Secret, owned bool) (*http.Response, error) {
	var out *http.Request
	if owned {
		out = req.WithContext(ctx)
	} else {
		out = req.Clone(ctx)
	}
	for k, v := range rc.issuer.Header {
		out.Header[k] = v
	}
	out.Header.Set("Authorization", "Bearer "+string(tok))
	return rc.roundTrip(out)
}

// checkOutside refuses a request outside the FHIR server's origin that is
// not https (nor http with AllowInsecureHTTP).
func (rc *ReadyClient) checkOutside(req *http.Request) error {
	u := req.URL
	if strings.EqualFold(u.Scheme, "https") || (strings.EqualFold(u.Scheme, "http") && rc.session.engine.cfg.AllowInsecureHTTP) {
		return nil
	}
	return newError("fhir", CodeInvalidRequest, rc.describe(req)+" was refused: outside the FHIR server, only https URLs are fetched",
		fmt.Errorf("%s is not https (set AllowInsecureHTTP for local development)", quoteShort(printable(u.Scheme+"://"+u.Host))))
}

// roundTrip sends a request the caller owns through the engine's FHIR
// client: for a URL outside the FHIR server's origin, its twin with the
// address guard (see newOutsideClient).
func (rc *ReadyClient) roundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", fhirJSON)
	}
	client := rc.session.engine.fhir
	if !rc.sameOrigin(req.URL) {
		client = rc.session.engine.outside
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, newError("fhir", CodeFHIRRequestFailed, rc.describe(req)+" failed", redactURLError(err))
	}
	return resp, nil
}

// HTTPClient returns an *http.Client that sends requests through
// [ReadyClient.Do]: the bearer token added on the FHIR origin only,
// refreshed as needed. Hand it to any other FHIR library.
func (rc *ReadyClient) HTTPClient() *http.Client {
	return &http.Client{Transport: readyTransport{rc}, CheckRedirect: sameOriginRedirect}
}

type readyTransport struct{ rc *ReadyClient }

func (t readyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.rc.Do(req.Context(), req)
}

// resolve turns a reference or path relative to the FHIR base ("Patient/1",
// "Observation?patient=1") into a URL. An absolute URL is kept as it is.
// No path, relative or absolute, may have a "." or ".." segment
// (percent-encoded or not): "Observation/.." would send the token to the
// FHIR base, and an absolute URL could climb out of it on the same origin.
// Relative paths may not name another host with "//host".
func (rc *ReadyClient) resolve(ref string) (*url.URL, error) {
	if r, ok := ParseReference("", ref); ok && ref == r.Type+"/"+r.ID {
		// "Type/id", the common case: nothing to check beyond its form.
		return url.Parse(rc.issuer.URL + "/" + ref)
	}
	u, err := url.Parse(ref)
	if err != nil {
		return nil, err
	}
	if hasDotSegment(u.Path) || hasDotSegment(u.Opaque) {
		return nil, fmt.Errorf("%s has a \".\" or \"..\" path segment", quoteShort(redactedURL(u)))
	}
	if u.IsAbs() {
		return u, nil
	}
	if u.Host != "" || strings.HasPrefix(ref, "//") {
		return nil, fmt.Errorf("%s names a host but no scheme", quoteShort(ref))
	}
	return url.Parse(rc.issuer.URL + "/" + strings.TrimLeft(ref, "/"))
}

// Read fetches a resource by reference ("Patient/123", relative to the FHIR
// base, or an absolute URL) and decodes its JSON into v. An absolute URL on
// another origin (a fhirUser on another server of the EHR, say) is fetched
// without the token, over https only and from a public address only,
// unless Config.AllowInsecureHTTP and Config.AllowPrivateNetworks say
// otherwise: the rules of [ReadyClient.Do]. A 404 gives an
// error for which errors.Is(err, CodeResourceNotFound) holds; other error
// statuses give CodeFHIRRequestFailed with the server's OperationOutcome.
func (rc *ReadyClient) Read(ctx context.Context, ref string, v any) error {
	u, err := rc.resolve(ref)
	if err != nil {
		return newError("fhir", CodeInvalidRequest, "malformed reference", err)
	}
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return newError("fhir", CodeInvalidRequest, "malformed reference", err)
	}
	return rc.doJSON(ctx, req, v)
}

// Read fetches the resource at ref, as [ReadyClient.Read] does, and
// returns it decoded into a new T:
//
//	p, err := core.Read[Patient](ctx, rc, rc.Patient().Reference())
//
// On error it returns T's zero value.
func Read[T any](ctx context.Context, rc *ReadyClient, ref string) (T, error) {
	var v T
	if err := rc.Read(ctx, ref, &v); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// doJSON sends req and decodes a 2xx JSON answer into v (when v is not nil).
func (rc *ReadyClient) doJSON(ctx context.Context, req *http.Request, v any) error {
	resp, err := rc.do(ctx, req, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return newError("fhir", CodeFHIRRequestFailed, rc.describe(req)+": reading the response", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fhirError(rc.describe(req), resp, body)
	}
	if v == nil || len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return newError("fhir", CodeFHIRRequestFailed, rc.describe(req)+": malformed JSON", err)
	}
	return nil
}

// fhirError turns an error response to the request described by what
// (see [ReadyClient.describe]) into an *Error with its status and
// OperationOutcome.
func fhirError(what string, resp *http.Response, body []byte) error {
	e := &Error{Op: "fhir", Code: CodeFHIRRequestFailed, Status: resp.StatusCode}
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusGone:
		e.Code = CodeResourceNotFound
	case http.StatusForbidden:
		e.Code = CodeFHIRForbidden
	case http.StatusUnauthorized:
		// Still refused after a refresh and a retry: the launch is unusable.
		e.Code = CodeLaunchExpired
	}
	var oo OperationOutcome
	if json.Unmarshal(body, &oo) == nil && oo.ResourceType == "OperationOutcome" {
		e.Outcome = &oo
	}
	e.Description = fmt.Sprintf("%s answered %d", what, resp.StatusCode)
	e.Err = outcomeText(e.Outcome)
	return e
}

// outcomeText is the text of an OperationOutcome as an error, or nil. It is
// the server's own words: kept as an error's cause, for logs, and never in
// its Description, which pages show.
func outcomeText(oo *OperationOutcome) error {
	if s := oo.String(); s != "" {
		return errors.New("the server said: " + printable(s))
	}
	return nil
}

// describe names a request for an error's Description, which pages show:
// its method and its path under the FHIR base in FHIR's own words only
// ("GET Patient/…", "GET Observation/…/_history/…", "POST Observation",
// "GET Observation/$lastn", "GET Patient/…/Observation"). A segment is
// shown as it is when it is an R4 resource type (first, or third as in a
// compartment search), _history or _search, or one of the standard
// operations of standardOperations; any other segment (an id, an
// operation the list lacks, text that merely looks like a type or an
// operation) is "…", and so is every segment after the fourth. So no
// patient id, nor anything else the EHR or the caller chose ("Call IT at
// 555-0100"), is shown. A request outside the FHIR base is "GET a URL
// outside the FHIR base".
func (rc *ReadyClient) describe(req *http.Request) string {
	base := strings.TrimRight(rc.base.EscapedPath(), "/")
	path := req.URL.EscapedPath()
	if !rc.sameOrigin(req.URL) || (path != base && !strings.HasPrefix(path, base+"/")) {
		return req.Method + " a URL outside the FHIR base"
	}
	segs := strings.Split(strings.Trim(strings.TrimPrefix(path, base), "/"), "/")
	if segs[0] == "" {
		return req.Method + " the FHIR base"
	}
	for i, s := range segs {
		// [base]/Type/id/_history/vid, [base]/Type/$op, [base]/Type/id/$op,
		// [base]/$op, [base]/Type/_search, [base]/Patient/id/Type
		keep := pathWords[s] || ((i == 0 || i == 2) && resourceTypes[s])
		if !keep || i > 3 {
			segs[i] = "…"
		}
	}
	return req.Method + " " + strings.Join(segs, "/")
}

// redactedURL is a URL's path for messages: no query (search parameters
// may identify a patient), no user info.
func redactedURL(u *url.URL) string {
	c := *u
	c.RawQuery, c.User, c.Fragment = "", nil, ""
	return c.String()
}

// redactURLError takes the query out of a *url.Error's URL, so that search
// parameters (which may name a patient) stay out of messages and logs.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			ue.URL = redactedURL(u)
		}
	}
	return err
}
