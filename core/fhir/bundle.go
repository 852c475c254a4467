package fhir

import (
	"bytes"
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
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Entry        []struct {
		Resource json.RawMessage `json:"resource"`
		Response *struct {
			Status       string          `json:"status"`
			Location     string          `json:"location"`
			ETag         string          `json:"etag"`
			LastModified string          `json:"lastModified"`
			Outcome      json.RawMessage `json:"outcome"`
		} `json:"response"`
	} `json:"entry"`
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
