package smarttest

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// jsonPatchType is the media type of RFC 6902 JSON Patch bodies.
const jsonPatchType = "application/json-patch+json"

// patchOp is one JSON Patch operation; add, replace, remove and test are
// supported.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// patch applies a JSON Patch to a resource and stores the new version.
func (s *Server) patch(req fhirRequest) fhirResult {
	if mt, _, err := mime.ParseMediaType(req.contentType); err != nil || mt != jsonPatchType {
		return errResult(http.StatusUnsupportedMediaType, "not-supported", "PATCH needs Content-Type "+jsonPatchType)
	}
	old := s.store.get(req.typ, req.id)
	if old == nil || old.deleted {
		return errResult(http.StatusNotFound, "not-found", fmt.Sprintf("%s/%s is not known", req.typ, req.id))
	}
	if req.ifMatch != "" && !etagMatches(req.ifMatch, old.version) {
		return errResult(http.StatusPreconditionFailed, "conflict", "If-Match does not match the current version")
	}
	var ops []patchOp
	if err := json.Unmarshal(req.body, &ops); err != nil {
		return errResult(http.StatusBadRequest, "structure", "body is not a JSON Patch array")
	}
	var doc any = deepCopy(old.body)
	for _, op := range ops {
		var err error
		if doc, err = applyPatchOp(doc, op); err != nil {
			return errResult(http.StatusUnprocessableEntity, "processing", fmt.Sprintf("patch %s %s: %v", op.Op, op.Path, err))
		}
	}
	body, ok := doc.(map[string]any)
	if !ok {
		return errResult(http.StatusUnprocessableEntity, "processing", "patch replaced the resource with a non-object")
	}
	return found(http.StatusOK, s.store.put(req.typ, req.id, body, s.opts.Now()))
}

// applyPatchOp applies one operation to doc and returns the new document.
func applyPatchOp(doc any, op patchOp) (any, error) {
	if op.Path == "" || op.Path[0] != '/' {
		return nil, errors.New("path must start with /")
	}
	tokens := strings.Split(op.Path[1:], "/")
	for i, t := range tokens {
		tokens[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	switch op.Op {
	case "add", "replace", "remove", "test":
	default:
		return nil, fmt.Errorf("unsupported op %q", op.Op)
	}
	return patchAt(doc, tokens, op)
}

// patchAt applies op at the path tokens below node and returns the new node.
func patchAt(node any, tokens []string, op patchOp) (any, error) {
	tok, last := tokens[0], len(tokens) == 1
	switch n := node.(type) {
	case map[string]any:
		child, exists := n[tok]
		if !last {
			if !exists {
				return nil, fmt.Errorf("no member %q", tok)
			}
			c, err := patchAt(child, tokens[1:], op)
			if err != nil {
				return nil, err
			}
			n[tok] = c
			return n, nil
		}
		switch {
		case op.Op == "add":
			n[tok] = deepCopy(op.Value)
		case !exists:
			return nil, fmt.Errorf("no member %q", tok)
		case op.Op == "replace":
			n[tok] = deepCopy(op.Value)
		case op.Op == "remove":
			delete(n, tok)
		case op.Op == "test" && !reflect.DeepEqual(child, op.Value):
			return nil, errors.New("test failed")
		}
		return n, nil
	case []any:
		if last && op.Op == "add" && tok == "-" {
			return append(n, deepCopy(op.Value)), nil
		}
		i, err := strconv.Atoi(tok)
		limit := len(n)
		if last && op.Op == "add" {
			limit++
		}
		if err != nil || i < 0 || i >= limit {
			return nil, fmt.Errorf("bad array index %q", tok)
		}
		if !last {
			c, err := patchAt(n[i], tokens[1:], op)
			if err != nil {
				return nil, err
			}
			n[i] = c
			return n, nil
		}
		switch op.Op {
		case "add":
			return append(n[:i], append([]any{deepCopy(op.Value)}, n[i:]...)...), nil
		case "replace":
			n[i] = deepCopy(op.Value)
		case "remove":
			return append(n[:i], n[i+1:]...), nil
		case "test":
			if !reflect.DeepEqual(n[i], op.Value) {
				return nil, errors.New("test failed")
			}
		}
		return n, nil
	}
	return nil, fmt.Errorf("cannot descend into %q", tok)
}
