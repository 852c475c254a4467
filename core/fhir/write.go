package fhir

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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
			wr.Outcome = new(OperationOutcome)
			if err := json.Unmarshal(body, wr.Outcome); err != nil {
				return err
			}
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
