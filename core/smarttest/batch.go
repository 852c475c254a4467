package smarttest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// bundleEntry is the part of a batch or transaction entry the server reads.
type bundleEntry struct {
	Resource json.RawMessage `json:"resource"`
	Request  struct {
		Method  string `json:"method"`
		URL     string `json:"url"`
		IfMatch string `json:"ifMatch"`
	} `json:"request"`
}

// batch answers POST /fhir with a Bundle of type batch or transaction.
// Entries run in the order given. A batch answers each entry on its own; a
// transaction is all or nothing: the first failing entry rolls back the
// store and its error is the answer. urn:uuid references between entries
// are not resolved.
func (s *Server) batch(root string, req fhirRequest) fhirResult {
	var b struct {
		ResourceType string        `json:"resourceType"`
		Type         string        `json:"type"`
		Entry        []bundleEntry `json:"entry"`
	}
	if err := json.Unmarshal(req.body, &b); err != nil || b.ResourceType != "Bundle" {
		return errResult(http.StatusBadRequest, "structure", "POST to the base URL needs a Bundle")
	}
	transaction := b.Type == "transaction"
	if !transaction && b.Type != "batch" {
		return errResult(http.StatusBadRequest, "invalid", "Bundle.type must be batch or transaction")
	}
	var snapshot *resourceStore
	if transaction {
		snapshot = s.store.clone()
	}
	entries := make([]any, 0, len(b.Entry))
	for i, e := range b.Entry {
		res := s.batchEntry(root, e, req.strict)
		if transaction && res.status >= 400 {
			s.store = snapshot
			if res.body == nil {
				res = errResult(res.status, "processing", "")
			}
			if issues, ok := res.body["issue"].([]any); ok && len(issues) > 0 {
				if issue, ok := issues[0].(map[string]any); ok {
					issue["diagnostics"] = fmt.Sprintf("transaction entry %d: %s", i, str(issue["diagnostics"]))
				}
			}
			return res
		}
		response := map[string]any{"status": fmt.Sprintf("%d %s", res.status, http.StatusText(res.status))}
		if res.location != "" {
			response["location"] = res.location
		}
		if res.etag != "" {
			response["etag"] = res.etag
		}
		entry := map[string]any{"response": response}
		switch {
		case res.status >= 400 && res.body != nil:
			response["outcome"] = res.body
		case res.body != nil:
			entry["resource"] = res.body
		}
		entries = append(entries, entry)
	}
	return fhirResult{status: http.StatusOK, body: map[string]any{
		"resourceType": "Bundle",
		"type":         b.Type + "-response",
		"entry":        entries,
	}}
}

// batchEntry performs one entry of a batch or transaction, with the
// handling preference of the request that carried it.
func (s *Server) batchEntry(root string, e bundleEntry, strict bool) fhirResult {
	method := strings.ToUpper(e.Request.Method)
	raw := strings.TrimPrefix(e.Request.URL, root+"/fhir")
	u, err := url.Parse(raw)
	if method == "" || err != nil || u.IsAbs() {
		return errResult(http.StatusBadRequest, "invalid", fmt.Sprintf("entry request %s %q is not for this server", method, e.Request.URL))
	}
	req := fhirRequest{
		method:  method,
		query:   u.Query(),
		ifMatch: e.Request.IfMatch,
		body:    e.Resource,
		strict:  strict,
	}
	if method == http.MethodPatch {
		// FHIR carries a JSON Patch in a batch as a Binary resource.
		var bin struct {
			ResourceType string `json:"resourceType"`
			ContentType  string `json:"contentType"`
			Data         string `json:"data"`
		}
		if json.Unmarshal(e.Resource, &bin) != nil || bin.ResourceType != "Binary" {
			return errResult(http.StatusBadRequest, "invalid", "a PATCH entry needs a Binary resource holding the JSON Patch")
		}
		if req.body, err = base64.StdEncoding.DecodeString(bin.Data); err != nil {
			return errResult(http.StatusBadRequest, "invalid", "Binary.data is not base64")
		}
		req.contentType = bin.ContentType
	}
	if res, ok := parseFHIRPath(u.Path, &req); !ok {
		return res
	}
	return s.doFHIR(root, req, 1)
}
