package core

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// FHIR media type sent as Accept and Content-Type.
const fhirJSON = "application/fhir+json"

// Do sends req with the launch's bearer token and returns the response,
// whatever its status; the caller closes its body. The token is added only
// when req goes to the launch's FHIR server origin: a request to any other
// host goes without it. A token about to expire is refreshed first; a 401
// answer refreshes once and retries with the new token, when the request
// body can be replayed (req.GetBody is set, as http.NewRequest does for
// in-memory bodies).
//
// Response bodies are capped at Config.MaxFHIRResponseBytes: reading past
// the cap fails.
func (rc *ReadyClient) Do(ctx context.Context, req *http.Request) (*http.Response, error) {
	req = req.WithContext(ctx)
	if !rc.sameOrigin(req.URL) {
		req.Header.Del("Authorization")
		return rc.session.engine.fhir.Do(req)
	}
	tok, err := rc.accessToken(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := rc.send(req, tok)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if req.Body != nil && req.GetBody == nil {
		return resp, nil // cannot replay the body; the caller sees the 401
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	tok, err = rc.refresh(ctx, "fhir", tok)
	if err != nil {
		return nil, err
	}
	retry := req.Clone(ctx)
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return nil, newError("fhir", CodeFHIRRequestFailed, "replaying the request body", err)
		}
	}
	return rc.send(retry, tok)
}

func (rc *ReadyClient) send(req *http.Request, tok Secret) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+string(tok))
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", fhirJSON)
	}
	resp, err := rc.session.engine.fhir.Do(req)
	if err != nil {
		return nil, newError("fhir", CodeFHIRRequestFailed, req.Method+" "+redactedURL(req.URL)+" failed", err)
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

// resolve turns a reference or path relative to the FHIR base into a URL.
func (rc *ReadyClient) resolve(ref string) (*url.URL, error) {
	if strings.Contains(ref, "://") {
		return url.Parse(ref)
	}
	return url.Parse(strings.TrimRight(rc.Issuer(), "/") + "/" + strings.TrimLeft(ref, "/"))
}

// Read fetches a resource by reference ("Patient/123", relative to the FHIR
// base, or an absolute URL) and decodes its JSON into v. A 404 gives an
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

// doJSON sends req and decodes a 2xx JSON answer into v (when v is not nil).
func (rc *ReadyClient) doJSON(ctx context.Context, req *http.Request, v any) error {
	resp, err := rc.Do(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return newError("fhir", CodeFHIRRequestFailed, req.Method+" "+redactedURL(req.URL)+": reading the response", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fhirError(req, resp, body)
	}
	if v == nil || len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return newError("fhir", CodeFHIRRequestFailed, req.Method+" "+redactedURL(req.URL)+": malformed JSON", err)
	}
	return nil
}

// fhirError turns an error response into an *Error with its status and
// OperationOutcome.
func fhirError(req *http.Request, resp *http.Response, body []byte) error {
	e := &Error{Op: "fhir", Code: CodeFHIRRequestFailed, Status: resp.StatusCode}
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
		e.Code = CodeResourceNotFound
	}
	var oo OperationOutcome
	if json.Unmarshal(body, &oo) == nil && oo.ResourceType == "OperationOutcome" {
		e.Outcome = &oo
	}
	e.Description = fmt.Sprintf("%s %s answered %d", req.Method, redactedURL(req.URL), resp.StatusCode)
	if s := e.Outcome.String(); s != "" {
		e.Description += ": " + printable(s)
	}
	return e
}

// redactedURL is a URL's path for messages: no query (search parameters
// may identify a patient), no user info.
func redactedURL(u *url.URL) string {
	c := *u
	c.RawQuery, c.User, c.Fragment = "", nil, ""
	return c.String()
}
