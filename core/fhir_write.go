package core

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
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
// 412 Precondition Failed, an *Error with Status 412, when another write
// came first. versionID is a version id such as "2" (sent as If-Match:
// W/"2") or an ETag as the server gave it.
func IfMatch(versionID string) WriteOption {
	return func(o *writeOptions) {
		if strings.HasPrefix(versionID, "W/") || strings.HasPrefix(versionID, `"`) {
			o.ifMatch = versionID
		} else {
			o.ifMatch = `W/"` + versionID + `"`
		}
	}
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
// resourceType must be typ.
func (rc *ReadyClient) Create(ctx context.Context, typ string, resource any, opts ...WriteOption) (*WriteResult, error) {
	if !validType(typ) {
		return nil, newError("fhir", CodeInvalidRequest, "create: the type is not a resource type", untrustedText("type", typ))
	}
	body, err := encodeJSON("create", resource)
	if err != nil {
		return nil, err
	}
	return rc.write(ctx, http.MethodPost, rc.issuer.URL+"/"+typ, body, fhirJSON, opts)
}

// Update replaces the resource at ref ("Patient/123"): PUT [base]/ref with
// resource encoded as JSON (a []byte or json.RawMessage is sent as it
// is). Its id must be the reference's. With [IfMatch] it is refused when
// the resource has changed since that version.
func (rc *ReadyClient) Update(ctx context.Context, ref string, resource any, opts ...WriteOption) (*WriteResult, error) {
	u, err := rc.resourceURL("update", ref)
	if err != nil {
		return nil, err
	}
	body, err := encodeJSON("update", resource)
	if err != nil {
		return nil, err
	}
	return rc.write(ctx, http.MethodPut, u, body, fhirJSON, opts)
}

// Patch changes the resource at ref ("Patient/123") with a JSON Patch:
// PATCH [base]/ref, Content-Type application/json-patch+json.
//
//	rc.Patch(ctx, "Observation/obs-1", []core.PatchOp{{Op: "replace", Path: "/status", Value: "amended"}})
func (rc *ReadyClient) Patch(ctx context.Context, ref string, patch []PatchOp, opts ...WriteOption) (*WriteResult, error) {
	u, err := rc.resourceURL("patch", ref)
	if err != nil {
		return nil, err
	}
	body, err := encodeJSON("patch", patch)
	if err != nil {
		return nil, err
	}
	return rc.write(ctx, http.MethodPatch, u, body, jsonPatchType, opts)
}

// Delete deletes the resource at ref ("Patient/123"): DELETE [base]/ref.
// A resource that does not exist gives an error for which
// errors.Is(err, CodeResourceNotFound) holds, when the server says so with
// 404 (servers may also answer success).
func (rc *ReadyClient) Delete(ctx context.Context, ref string, opts ...WriteOption) error {
	u, err := rc.resourceURL("delete", ref)
	if err != nil {
		return err
	}
	_, err = rc.write(ctx, http.MethodDelete, u, nil, "", opts)
	return err
}

// resourceURL turns "Type/id" (or an absolute URL under the FHIR base)
// into the resource's URL. Writes go to the launch's FHIR server only.
func (rc *ReadyClient) resourceURL(op, ref string) (string, error) {
	r, ok := ParseReference(rc.issuer.URL, ref)
	if !ok || r.Reference != r.Type+"/"+r.ID {
		return "", newError("fhir", CodeInvalidRequest, op+": the reference is not a Type/id reference on the launch's FHIR server", untrustedText("reference", ref))
	}
	return rc.issuer.URL + "/" + r.Reference, nil
}

// encodeJSON encodes a request body; []byte and json.RawMessage go as
// they are.
func encodeJSON(op string, v any) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		return b, nil
	case json.RawMessage:
		return b, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, newError("fhir", CodeInvalidRequest, op+": the resource does not encode as JSON", err)
	}
	return b, nil
}

// write sends one write request and reads the server's answer.
func (rc *ReadyClient) write(ctx context.Context, method, rawURL string, body []byte, contentType string, opts []WriteOption) (*WriteResult, error) {
	var o writeOptions
	for _, opt := range opts {
		opt(&o)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		return nil, newError("fhir", CodeInvalidRequest, "malformed URL", err)
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
	resp, err := rc.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, newError("fhir", CodeFHIRRequestFailed, rc.describe(req)+": reading the response", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fhirError(rc.describe(req), resp, data)
	}
	wr := &WriteResult{Status: resp.StatusCode, Location: resp.Header.Get("Location"), ETag: resp.Header.Get("ETag")}
	if err := wr.fill(data); err != nil {
		return nil, newError("fhir", CodeFHIRRequestFailed, rc.describe(req)+": malformed JSON", err)
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
