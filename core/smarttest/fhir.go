package smarttest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// maxFHIRBody bounds request bodies of the FHIR server.
const maxFHIRBody = 4 << 20

// fhirRequest is one FHIR interaction, from an HTTP request or a batch entry.
type fhirRequest struct {
	method      string
	typ, id     string
	vid         string // version id of a vread
	query       url.Values
	body        []byte
	ifMatch     string
	contentType string
	strict      bool // Prefer: handling=strict
}

// fhirResult is the answer to one FHIR interaction.
type fhirResult struct {
	status   int
	body     map[string]any // nil for no body
	location string
	etag     string
}

func errResult(status int, code, diagnostics string) fhirResult {
	return fhirResult{status: status, body: operationOutcome(code, diagnostics)}
}

// bearerToken returns the request's bearer token, or "".
func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// The FHIR version of the server: the CapabilityStatement's fhirVersion,
// and its major.minor form, the value of the fhirVersion parameter of
// FHIR's media types.
const (
	fhirVersion      = "4.0.1"
	fhirVersionParam = "4.0"
)

// acceptedVersion returns the fhirVersion parameter of the Accept header's
// first media range that has one (https://hl7.org/fhir/R4/http.html#version-parameter),
// and whether there was one.
func acceptedVersion(h http.Header) (string, bool) {
	for _, v := range h.Values("Accept") {
		for _, mr := range strings.Split(v, ",") {
			_, params, err := mime.ParseMediaType(strings.TrimSpace(mr))
			if err != nil {
				continue
			}
			if fv, ok := params["fhirversion"]; ok {
				return fv, true
			}
		}
	}
	return "", false
}

// strictHandling reports whether a request's Prefer header asks for
// handling=strict: a search refuses the parameters it does not honour
// rather than running without them. The first handling preference counts.
func strictHandling(h http.Header) bool {
	for _, v := range h.Values("Prefer") {
		for _, pref := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ';' }) {
			name, value, _ := strings.Cut(pref, "=")
			if strings.EqualFold(strings.TrimSpace(name), "handling") {
				return strings.EqualFold(strings.Trim(strings.TrimSpace(value), `"`), "strict")
			}
		}
	}
	return false
}

// serveFHIR is the FHIR server under /fhir: every request needs a valid
// access token.
func (s *Server) serveFHIR(w http.ResponseWriter, r *http.Request) {
	if reason := s.checkAccessToken(r); reason != "" {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="smarttest", error="invalid_token", error_description=%q`, reason))
		s.writeOutcome(w, http.StatusUnauthorized, "login", reason, EndpointFHIR)
		return
	}
	if v, ok := acceptedVersion(r.Header); ok && v != fhirVersionParam {
		s.writeOutcome(w, http.StatusNotAcceptable, "not-supported",
			fmt.Sprintf("this server speaks FHIR %s (fhirVersion=%s), not fhirVersion=%s", fhirVersion, fhirVersionParam, v), EndpointFHIR)
		return
	}
	req := fhirRequest{
		method:      r.Method,
		query:       r.URL.Query(),
		ifMatch:     r.Header.Get("If-Match"),
		contentType: r.Header.Get("Content-Type"),
		strict:      strictHandling(r.Header),
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFHIRBody))
		if err != nil {
			s.writeOutcome(w, http.StatusRequestEntityTooLarge, "too-costly", "request body too large", EndpointFHIR)
			return
		}
		req.body = body
	}
	res, ok := parseFHIRPath(strings.TrimPrefix(r.URL.Path, "/fhir"), &req)
	if ok {
		root := s.root(r)
		s.mu.Lock()
		res = s.doFHIR(root, req, 0)
		s.mu.Unlock()
	}
	if res.location != "" {
		w.Header().Set("Location", res.location)
	}
	if res.etag != "" {
		w.Header().Set("ETag", res.etag)
	}
	if res.body == nil {
		w.WriteHeader(res.status)
		return
	}
	s.writeJSON(w, r, res.status, fhirJSON, res.body, EndpointFHIR)
}

// checkAccessToken returns why a FHIR request is not authorized, or "".
func (s *Server) checkAccessToken(r *http.Request) string {
	tok := bearerToken(r)
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.Unauthorized > 0 {
		s.faults.Unauthorized--
		return "fault injected: unauthorized"
	}
	if tok == "" {
		return "missing bearer token"
	}
	at := s.accessTokens[tok]
	switch {
	case at == nil:
		return "unknown access token"
	case at.expired || !now.Before(at.expires):
		return "access token expired"
	case at.revoked || at.grant.revoked:
		return "access token revoked"
	}
	return ""
}

// parseFHIRPath fills typ, id and vid from a path relative to the base
// ("/Patient/pat-1"). It returns an error result when the path is not one
// of base, Type, Type/id or Type/id/_history/vid.
func parseFHIRPath(path string, req *fhirRequest) (fhirResult, bool) {
	path = strings.Trim(path, "/")
	var parts []string
	if path != "" {
		parts = strings.Split(path, "/")
	}
	switch {
	case len(parts) == 0:
	case len(parts) == 4 && parts[2] == "_history":
		req.typ, req.id, req.vid = parts[0], parts[1], parts[3]
	case len(parts) <= 2:
		req.typ = parts[0]
		if len(parts) == 2 {
			req.id = parts[1]
		}
	default:
		return errResult(http.StatusNotFound, "not-supported", "unknown FHIR path /"+path), false
	}
	if req.typ != "" && !validType(req.typ) {
		return errResult(http.StatusNotFound, "not-supported", fmt.Sprintf("unknown resource type %q", req.typ)), false
	}
	return fhirResult{}, true
}

// validType reports whether t looks like a FHIR resource type name.
func validType(t string) bool {
	if t == "" || t[0] < 'A' || t[0] > 'Z' {
		return false
	}
	for _, c := range t {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// doFHIR performs one interaction. The caller holds s.mu; depth counts
// nested batches.
func (s *Server) doFHIR(root string, req fhirRequest, depth int) fhirResult {
	m := req.method
	switch {
	case req.typ == "" && m == http.MethodPost:
		if depth > 0 {
			return errResult(http.StatusBadRequest, "not-supported", "nested batch")
		}
		return s.batch(root, req)
	case req.typ == "":
		return errResult(http.StatusMethodNotAllowed, "not-supported", m+" on the base URL")
	case req.id == "" && m == http.MethodGet:
		return s.search(root, req)
	case req.id == "" && m == http.MethodPost:
		return s.create(root, req)
	case req.vid != "" && m == http.MethodGet, req.vid == "" && m == http.MethodGet:
		return s.read(req)
	case req.vid != "":
		return errResult(http.StatusMethodNotAllowed, "not-supported", m+" on a version")
	case m == http.MethodPut:
		return s.update(root, req)
	case m == http.MethodPatch:
		return s.patch(req)
	case m == http.MethodDelete:
		return s.delete(req)
	}
	return errResult(http.StatusMethodNotAllowed, "not-supported", m+" is not supported here")
}

// decodeResource parses a request body as a resource of type typ.
func decodeResource(typ string, body []byte) (map[string]any, *fhirResult) {
	var res map[string]any
	if err := json.Unmarshal(body, &res); err != nil || res == nil {
		r := errResult(http.StatusBadRequest, "structure", "body is not a JSON resource")
		return nil, &r
	}
	if rt := str(res["resourceType"]); rt != typ {
		r := errResult(http.StatusBadRequest, "invalid", fmt.Sprintf("resourceType %q does not match %s", rt, typ))
		return nil, &r
	}
	return res, nil
}

// etag returns the weak ETag of a version.
func etag(version int) string { return fmt.Sprintf(`W/"%d"`, version) }

// etagMatches reports whether an If-Match value names a version.
func etagMatches(ifMatch string, version int) bool {
	v := strings.TrimPrefix(strings.TrimSpace(ifMatch), "W/")
	return strings.Trim(v, `"`) == fmt.Sprint(version)
}

// found returns a result carrying a copy of a stored resource.
func found(status int, res *storedResource) fhirResult {
	return fhirResult{status: status, body: deepCopy(res.body).(map[string]any), etag: etag(res.version)}
}

func (s *Server) read(req fhirRequest) fhirResult {
	res := s.store.get(req.typ, req.id)
	switch {
	case res == nil:
		return errResult(http.StatusNotFound, "not-found", fmt.Sprintf("%s/%s is not known", req.typ, req.id))
	case res.deleted:
		return errResult(http.StatusGone, "deleted", fmt.Sprintf("%s/%s was deleted", req.typ, req.id))
	case req.vid != "" && req.vid != fmt.Sprint(res.version):
		return errResult(http.StatusNotFound, "not-found", fmt.Sprintf("%s/%s has no version %s", req.typ, req.id, req.vid))
	}
	return found(http.StatusOK, res)
}

func (s *Server) create(root string, req fhirRequest) fhirResult {
	body, bad := decodeResource(req.typ, req.body)
	if bad != nil {
		return *bad
	}
	id := s.store.newID(req.typ)
	res := s.store.put(req.typ, id, body, s.opts.Now())
	out := found(http.StatusCreated, res)
	out.location = fmt.Sprintf("%s/fhir/%s/%s/_history/%d", root, req.typ, id, res.version)
	return out
}

func (s *Server) update(root string, req fhirRequest) fhirResult {
	body, bad := decodeResource(req.typ, req.body)
	if bad != nil {
		return *bad
	}
	if id, ok := body["id"]; ok && id != req.id {
		return errResult(http.StatusBadRequest, "invalid", fmt.Sprintf("id %v does not match the URL's %s", id, req.id))
	}
	old := s.store.get(req.typ, req.id)
	exists := old != nil && !old.deleted
	if req.ifMatch != "" && (!exists || !etagMatches(req.ifMatch, old.version)) {
		return errResult(http.StatusPreconditionFailed, "conflict", "If-Match does not match the current version")
	}
	res := s.store.put(req.typ, req.id, body, s.opts.Now())
	if exists {
		return found(http.StatusOK, res)
	}
	out := found(http.StatusCreated, res)
	out.location = fmt.Sprintf("%s/fhir/%s/%s/_history/%d", root, req.typ, req.id, res.version)
	return out
}

func (s *Server) delete(req fhirRequest) fhirResult {
	res := s.store.get(req.typ, req.id)
	if res == nil {
		return errResult(http.StatusNotFound, "not-found", fmt.Sprintf("%s/%s is not known", req.typ, req.id))
	}
	if !res.deleted {
		res.deleted = true
		res.version++
	}
	return fhirResult{status: http.StatusNoContent}
}
