package smarttest

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Search paging: the default and largest page sizes, and the parameter that
// carries the offset in next links.
const (
	defaultPageSize = 20
	maxPageSize     = 1000
	offsetParam     = "_offset"
)

// search answers GET /fhir/{Type}?… with a searchset Bundle. It knows the
// parameters _id, patient and subject (references to a Patient, by id,
// relative or absolute reference), _count and _offset, and ignores others.
func (s *Server) search(root string, req fhirRequest) fhirResult {
	q := req.query
	count, err := intParam(q, "_count", defaultPageSize)
	if err != nil {
		return errResult(http.StatusBadRequest, "invalid", "_count must be a number >= 0")
	}
	count = min(count, maxPageSize)
	offset, err := intParam(q, offsetParam, 0)
	if err != nil {
		return errResult(http.StatusBadRequest, "invalid", "_offset must be a number >= 0")
	}
	subject := ""
	if p := q.Get("patient"); p != "" {
		subject = "Patient/" + lastSegment(p)
	}
	if sub := q.Get("subject"); sub != "" {
		if !strings.Contains(sub, "/") {
			sub = "Patient/" + sub
		}
		subject = trimBase(root, sub)
	}
	ids := map[string]bool{}
	for _, id := range strings.Split(q.Get("_id"), ",") {
		if id != "" {
			ids[id] = true
		}
	}

	var matches []*storedResource
	for _, key := range s.store.order {
		res := s.store.byKey[key]
		if res.deleted || !strings.HasPrefix(key, req.typ+"/") {
			continue
		}
		if len(ids) > 0 && !ids[str(res.body["id"])] {
			continue
		}
		if subject != "" && !refersTo(res.body, subject) {
			continue
		}
		matches = append(matches, res)
	}

	base := root + "/fhir/"
	bundle := map[string]any{
		"resourceType": "Bundle",
		"type":         "searchset",
		"total":        len(matches),
	}
	links := []any{map[string]any{"relation": "self", "url": base + req.typ + "?" + q.Encode()}}
	if end := offset + count; end < len(matches) && count > 0 {
		next := url.Values{}
		for k, v := range q {
			next[k] = append([]string(nil), v...)
		}
		next.Set("_count", strconv.Itoa(count))
		next.Set(offsetParam, strconv.Itoa(end))
		origin := root
		if o := s.faults.NextLinkOrigin; o != "" {
			origin = strings.TrimSuffix(o, "/")
		}
		links = append(links, map[string]any{"relation": "next", "url": origin + "/fhir/" + req.typ + "?" + next.Encode()})
	}
	bundle["link"] = links
	var entries []any
	for i := offset; i < len(matches) && i < offset+count; i++ {
		res := matches[i]
		entries = append(entries, map[string]any{
			"fullUrl":  base + req.typ + "/" + str(res.body["id"]),
			"resource": deepCopy(res.body),
			"search":   map[string]any{"mode": "match"},
		})
	}
	if entries != nil {
		bundle["entry"] = entries
	}
	return fhirResult{status: http.StatusOK, body: bundle}
}

// intParam parses a non-negative integer query parameter.
func intParam(q url.Values, name string, def int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err == nil && n < 0 {
		err = strconv.ErrRange
	}
	return n, err
}

func lastSegment(ref string) string {
	return ref[strings.LastIndex(ref, "/")+1:]
}

// trimBase makes an absolute reference to this server relative.
func trimBase(root, ref string) string {
	return strings.TrimPrefix(ref, root+"/fhir/")
}

// refersTo reports whether a resource's subject (or patient) is ref.
func refersTo(body map[string]any, ref string) bool {
	for _, field := range []string{"subject", "patient"} {
		if r, ok := body[field].(map[string]any); ok && str(r["reference"]) == ref {
			return true
		}
	}
	return str(body["resourceType"])+"/"+str(body["id"]) == ref
}
