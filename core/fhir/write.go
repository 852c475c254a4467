package fhir

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// jsonPatchType is the media type of a JSON Patch (RFC 6902) body.
const jsonPatchType = "application/json-patch+json"

// WriteResult is the server's answer to a create, update or patch.
type WriteResult struct {
	// Status is the HTTP status: 201 when a resource was created, 200 when
	// one was changed.
	Status int
	// Location is the Location header: the new resource's URL, usually
	// with its version ("…/Patient/123/_history/1"), or "".
	Location string
	// ID is the resource's id, from Location or the returned resource.
	ID string
	// VersionID is the new version's id, from the ETag, Location or the
	// returned resource's meta.versionId; "" when the server gave none.
	// Pass it to [IfMatch] for the next update.
	VersionID string
	// ETag is the ETag header, such as W/"2", or "".
	ETag string
	// Resource is the resource as the server stored it, when it returned
	// one (it is asked to, with Prefer: return=representation), or nil.
	// Decode it with json.Unmarshal.
	Resource json.RawMessage
	// Outcome is the OperationOutcome the server returned instead of the
	// resource, such as warnings, or nil.
	Outcome *OperationOutcome
}

// WriteOption sets a condition on a write; see [IfMatch] and [IfNoneExist].
type WriteOption func(*writeOptions)

type writeOptions struct {
	ifMatch     string
	ifNoneExist string
}

// IfMatch makes an update, patch or delete conditional on the resource's
// current version (FHIR's optimistic locking): the server refuses it with
// 412 Precondition Failed, an *Error with StatusCode 412, when another
// write came first. versionID is a version id such as "2" (sent as
// If-Match: W/"2") or an ETag as the server gave it.
func IfMatch(versionID string) WriteOption {
	return func(o *writeOptions) { o.ifMatch = etag(versionID) }
}

// etag is a version id as an ETag: "2" becomes W/"2"; an ETag stays as it
// is.
func etag(versionID string) string {
	if strings.HasPrefix(versionID, "W/") || strings.HasPrefix(versionID, `"`) {
		return versionID
	}
	return `W/"` + versionID + `"`
}

// IfNoneExist makes a create conditional (If-None-Exist): the server
// creates nothing when a resource matches the search query, such as
// identifier=http://hospital.example/mrn|123.
func IfNoneExist(query url.Values) WriteOption {
	return func(o *writeOptions) { o.ifNoneExist = query.Encode() }
}

// PatchOp is one operation of a JSON Patch (RFC 6902).
type PatchOp struct {
	// Op is "add", "remove", "replace", "move", "copy" or "test".
	Op string `json:"op"`
	// Path is a JSON Pointer into the resource, such as "/status".
	Path string `json:"path"`
	// Value is the value to add, replace with or test for.
	Value any `json:"value,omitempty"`
	// From is the source of a move or copy.
	From string `json:"from,omitempty"`
}

// Create creates a resource of type typ: POST [base]/typ with resource
// encoded as JSON (a []byte or json.RawMessage is sent as it is). Its
// resourceType must be typ. With [IfNoneExist] the server creates nothing
// when a resource matches.
func (c *Client) Create(ctx context.Context, typ string, resource any, opts ...WriteOption) (*WriteResult, error) {
	if !validType(typ) {
		return nil, &Error{Method: http.MethodPost, Err: errors.New("the type is not a resource type")}
	}
	return c.write(ctx, http.MethodPost, typ, c.baseURL+"/"+typ, resource, fhirJSON, opts)
}

// Update replaces the resource at ref ("Patient/123", or its absolute URL
// under the base URL): PUT [base]/Type/id with resource encoded as JSON (a
// []byte or json.RawMessage is sent as it is). Its id must be the
// reference's. With [IfMatch] it is refused when the resource has changed
// since that version. Servers may create the resource when it does not
// exist (Status 201).
func (c *Client) Update(ctx context.Context, ref string, resource any, opts ...WriteOption) (*WriteResult, error) {
	return c.writeAt(ctx, http.MethodPut, ref, resource, fhirJSON, opts)
}

// Patch changes the resource at ref ("Patient/123") with a JSON Patch:
// PATCH [base]/Type/id, Content-Type application/json-patch+json.
//
//	c.Patch(ctx, "Observation/obs-1", []fhir.PatchOp{{Op: "replace", Path: "/status", Value: "amended"}})
func (c *Client) Patch(ctx context.Context, ref string, patch []PatchOp, opts ...WriteOption) (*WriteResult, error) {
	return c.writeAt(ctx, http.MethodPatch, ref, patch, jsonPatchType, opts)
}

// Delete deletes the resource at ref ("Patient/123"): DELETE
// [base]/Type/id. A resource that does not exist gives an error for which
// errors.Is(err, ErrNotFound) holds, when the server says so with 404 or
// 410 (servers may also answer success).
func (c *Client) Delete(ctx context.Context, ref string, opts ...WriteOption) error {
	_, err := c.writeAt(ctx, http.MethodDelete, ref, nil, "", opts)
	return err
}

// writeAt sends a write to the resource at ref: a "Type/id" reference on
// the base URL's server, relative or absolute. Writes never go elsewhere.
// resource is the body, encoded as JSON, unless contentType is "".
func (c *Client) writeAt(ctx context.Context, method, ref string, resource any, contentType string, opts []WriteOption) (*WriteResult, error) {
	r, ok := ParseReference(c.baseURL, ref)
	if !ok || r.URL != "" {
		return nil, &Error{Method: method, Resource: c.refType(ref),
			Err: errors.New("the reference is not a Type/id reference to a resource under the base URL")}
	}
	return c.write(ctx, method, r.Type, c.baseURL+"/"+r.Type+"/"+r.ID, resource, contentType, opts)
}

// encodeJSON encodes a request body; []byte and json.RawMessage go as
// they are.
func encodeJSON(v any) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		return b, nil
	case json.RawMessage:
		return b, nil
	}
	return json.Marshal(v)
}

// write sends one write request of typ's resource to rawURL, with
// resource as its JSON body unless contentType is "", and reads the
// server's answer.
func (c *Client) write(ctx context.Context, method, typ, rawURL string, resource any, contentType string, opts []WriteOption) (*WriteResult, error) {
	fail := &Error{Method: method, Resource: knownType(typ)}
	var o writeOptions
	for _, opt := range opts {
		opt(&o)
	}
	var body []byte
	if contentType != "" {
		var err error
		if body, err = encodeJSON(resource); err != nil {
			fail.Err = fmt.Errorf("the request body does not encode as JSON: %w", err)
			return nil, fail
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, bytes.NewReader(body))
	if err != nil {
		fail.Err = err
		return nil, fail
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if method != http.MethodDelete {
		req.Header.Set("Prefer", "return=representation")
	}
	if o.ifMatch != "" {
		req.Header.Set("If-Match", o.ifMatch)
	}
	if o.ifNoneExist != "" {
		req.Header.Set("If-None-Exist", o.ifNoneExist)
	}
	words := requestWords(c.basePath, req.URL)
	if q, err := url.ParseQuery(o.ifNoneExist); err == nil {
		words = append(words, queryWords(q)...) // servers echo conditions too
	}
	a, err := c.exchange(req, fail.Resource, words)
	if err != nil {
		return nil, err
	}
	wr := &WriteResult{Status: a.status, Location: a.header.Get("Location"), ETag: a.header.Get("ETag")}
	if err := wr.fill(a.body); err != nil {
		fail.StatusCode, fail.Err = a.status, fmt.Errorf("malformed JSON: %w", err)
		return nil, fail
	}
	return wr, nil
}

// fill sets Resource or Outcome from the body, and ID and VersionID from
// what the server said.
func (wr *WriteResult) fill(body []byte) error {
	var head struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Meta         struct {
			VersionID string `json:"versionId"`
		} `json:"meta"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &head); err != nil {
			return err
		}
		if head.ResourceType == "OperationOutcome" {
			wr.Outcome = decodeOutcome(body) // nil when too large to read
		} else {
			wr.Resource = body
		}
	}
	id, vid := locationParts(wr.Location)
	wr.ID = cmp.Or(id, head.ID)
	wr.VersionID = cmp.Or(versionFromETag(wr.ETag), vid, head.Meta.VersionID)
	return nil
}

// locationParts reads the id and version id from a Location such as
// "…/Patient/123/_history/2".
func locationParts(loc string) (id, vid string) {
	u, err := url.Parse(loc)
	if err != nil || loc == "" {
		return "", ""
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	n := len(parts)
	if n >= 4 && parts[n-2] == "_history" {
		return parts[n-3], parts[n-1]
	}
	if n >= 2 {
		return parts[n-1], ""
	}
	return "", ""
}

// versionFromETag reads "2" from W/"2".
func versionFromETag(etag string) string {
	return strings.Trim(strings.TrimPrefix(strings.TrimSpace(etag), "W/"), `"`)
}

// BundleEntry is one request of a batch or transaction.
type BundleEntry struct {
	// Method is the HTTP method: "GET", "HEAD", "POST", "PUT", "PATCH" or
	// "DELETE".
	Method string
	// URL is the request's URL relative to the FHIR base: "Patient" to
	// create, "Patient/123" to read, update, patch or delete,
	// "Observation?patient=123" to search.
	URL string
	// Resource is the body of a POST or PUT, encoded as JSON (a []byte or
	// json.RawMessage is sent as it is). For a PATCH it is a []PatchOp,
	// sent as a Binary resource as FHIR requires, or that Binary itself.
	Resource any
	// FullURL is the entry's fullUrl, such as "urn:uuid:…", by which the
	// other entries of a transaction can refer to a resource it creates.
	FullURL string
	// IfMatch makes the entry conditional on a version (see [IfMatch]):
	// a version id such as "2" or an ETag.
	IfMatch string
	// IfNoneExist is a conditional create's search query, such as
	// "identifier=http://hospital.example/mrn|123".
	IfNoneExist string
}

// EntryResponse is the server's answer to one entry of a batch or
// transaction, in the order of the entries sent.
type EntryResponse struct {
	// Status is the entry's HTTP status, such as 201; 0 when the server
	// gave none.
	Status int
	// Location is the location of a created resource, or "".
	Location string
	// ETag is the new version's ETag, such as W/"2", or "".
	ETag string
	// LastModified is the server's lastModified, as sent, or "".
	LastModified string
	// Resource is the resource the server returned for the entry, or nil.
	Resource json.RawMessage
	// Outcome is the OperationOutcome of a failed entry (or warnings), or
	// nil.
	Outcome *OperationOutcome

	// method, resource and said are the entry's Error fields (see Err).
	method, resource, said string
}

// Err returns nil when the entry succeeded (a 2xx status), and otherwise
// an *Error as a request of its own would give, with the entry's method,
// resource type, Status and Outcome: errors.Is(err, ErrNotFound) holds for
// 404 and 410.
func (r *EntryResponse) Err() error {
	if r.Status >= 200 && r.Status <= 299 {
		return nil
	}
	e := &Error{Method: r.method, Resource: r.resource, StatusCode: r.Status, Outcome: r.Outcome, said: r.said}
	if r.Status == 0 {
		e.Err = errors.New("the server gave the entry no status")
	}
	return e
}

// Batch sends the entries as a batch Bundle, POSTed to the FHIR base URL,
// and returns the server's answer to each, in order. The server runs each
// entry on its own: one failing does not fail the others, nor the call;
// check each with [EntryResponse.Err].
func (c *Client) Batch(ctx context.Context, entries []BundleEntry) ([]EntryResponse, error) {
	return c.postBundle(ctx, "batch", entries)
}

// Transaction sends the entries as a transaction Bundle, POSTed to the FHIR
// base URL: the server runs all of them or none. When it refuses, the
// error carries its status and OperationOutcome; otherwise the answer to
// each entry is returned, in order.
func (c *Client) Transaction(ctx context.Context, entries []BundleEntry) ([]EntryResponse, error) {
	return c.postBundle(ctx, "transaction", entries)
}

// bundleRequestEntry is one entry of a batch or transaction Bundle.
type bundleRequestEntry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Request  struct {
		Method      string `json:"method"`
		URL         string `json:"url"`
		IfMatch     string `json:"ifMatch,omitempty"`
		IfNoneExist string `json:"ifNoneExist,omitempty"`
	} `json:"request"`
}

// bundleResponse is the part of a batch-response or transaction-response
// Bundle the client reads.
type bundleResponse struct {
	ResourceType string                 `json:"resourceType"`
	Type         string                 `json:"type"`
	Entry        entries[responseEntry] `json:"entry"`
}

// responseEntry is one entry of a batch-response or transaction-response.
type responseEntry struct {
	Resource json.RawMessage `json:"resource"`
	Response *struct {
		Status       string          `json:"status"`
		Location     string          `json:"location"`
		ETag         string          `json:"etag"`
		LastModified string          `json:"lastModified"`
		Outcome      json.RawMessage `json:"outcome"`
	} `json:"response"`
}

// postBundle sends a batch or transaction (typ) and reads the answer.
func (c *Client) postBundle(ctx context.Context, typ string, entries []BundleEntry) ([]EntryResponse, error) {
	fail := func(status int, err error) error {
		return &Error{Method: http.MethodPost, Resource: "Bundle", StatusCode: status, Err: err}
	}
	out := make([]bundleRequestEntry, len(entries))
	resps := make([]EntryResponse, len(entries))
	entryWords := make([][]string, len(entries)) // each entry's ids and query values
	var words []string                           // all of them
	for i, e := range entries {
		be := &out[i]
		method := strings.ToUpper(e.Method)
		switch method {
		case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		default:
			return nil, fail(0, fmt.Errorf("%s entry %d has a method other than GET, HEAD, POST, PUT, PATCH or DELETE", typ, i))
		}
		u, err := url.Parse(e.URL)
		if e.URL == "" || err != nil || u.IsAbs() || u.Host != "" || hasDotSegment(u.Path) {
			return nil, fail(0, fmt.Errorf("%s entry %d has no URL relative to the FHIR base", typ, i))
		}
		entryWords[i] = append(requestWords("", u), e.FullURL)
		if q, err := url.ParseQuery(e.IfNoneExist); err == nil {
			entryWords[i] = append(entryWords[i], queryWords(q)...)
		}
		words = append(words, entryWords[i]...)
		first, _, _ := strings.Cut(strings.TrimLeft(u.Path, "/"), "/")
		resps[i].method, resps[i].resource = method, knownType(first)
		be.FullURL = e.FullURL
		be.Request.Method, be.Request.URL, be.Request.IfNoneExist = method, e.URL, e.IfNoneExist
		if e.IfMatch != "" {
			be.Request.IfMatch = etag(e.IfMatch)
		}
		if e.Resource == nil {
			continue
		}
		res := e.Resource
		if patch, ok := res.([]PatchOp); ok && method == http.MethodPatch {
			b, err := json.Marshal(patch)
			if err != nil {
				return nil, fail(0, fmt.Errorf("%s entry %d's patch does not encode as JSON: %w", typ, i, err))
			}
			res = map[string]string{"resourceType": "Binary", "contentType": jsonPatchType, "data": base64.StdEncoding.EncodeToString(b)}
		}
		if be.Resource, err = encodeJSON(res); err != nil {
			return nil, fail(0, fmt.Errorf("%s entry %d's resource does not encode as JSON: %w", typ, i, err))
		}
	}
	body, err := json.Marshal(map[string]any{"resourceType": "Bundle", "type": typ, "entry": out})
	if err != nil {
		return nil, fail(0, fmt.Errorf("an entry's resource is not valid JSON: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL, bytes.NewReader(body))
	if err != nil {
		return nil, fail(0, err)
	}
	req.Header.Set("Content-Type", fhirJSON)
	req.Header.Set("Prefer", "return=representation")
	a, err := c.exchange(req, "Bundle", words)
	if err != nil {
		return nil, err
	}
	var br bundleResponse
	if err := json.Unmarshal(a.body, &br); err != nil {
		return nil, fail(a.status, fmt.Errorf("malformed JSON: %w", err))
	}
	if br.ResourceType != "Bundle" || br.Type != typ+"-response" {
		return nil, fail(a.status, fmt.Errorf("the answer is a %s %s, not a %s-response Bundle", quote(br.Type), quote(br.ResourceType), typ))
	}
	if len(br.Entry) != len(entries) {
		return nil, fail(a.status, fmt.Errorf("the answer has %d entries for %d", len(br.Entry), len(entries)))
	}
	for i, e := range br.Entry {
		r := &resps[i]
		r.Resource = e.Resource
		if e.Response == nil {
			continue
		}
		r.Status = entryStatus(e.Response.Status)
		r.Location, r.ETag, r.LastModified = e.Response.Location, e.Response.ETag, e.Response.LastModified
		if len(e.Response.Outcome) > 0 {
			r.Outcome = decodeOutcome(e.Response.Outcome)
		}
		if r.Outcome == nil && len(r.Resource) > 0 {
			r.Outcome = decodeOutcome(r.Resource)
		}
		r.said = outcomeText(r.Outcome, entryWords[i])
	}
	return resps, nil
}

// entryStatus reads the code from a response status such as "201 Created".
func entryStatus(s string) int {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, ' '); i >= 0 {
		s = s[:i]
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}
