package smarttest

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// search answers GET /fhir/{Type}?… with a searchset Bundle; doc.go lists
// the parameters it honours. A parameter it does not honour is left out of
// the search and named in an OperationOutcome entry (search mode
// "outcome") of the Bundle, or, when the request prefers
// handling=strict, refused with 400.
func (s *Server) search(root string, req fhirRequest) fhirResult {
	sq, bad := parseSearch(root, req.typ, req.query)
	if bad != nil {
		return *bad
	}
	if len(sq.unsupported) > 0 && req.strict {
		return fhirResult{status: http.StatusBadRequest, body: outcome("error", "not-supported", sq.unsupported...)}
	}

	var matches []*storedResource
	for _, key := range s.store.order {
		res := s.store.byKey[key]
		if res.deleted || !strings.HasPrefix(key, req.typ+"/") {
			continue
		}
		if sq.matches(res.body) {
			matches = append(matches, res)
		}
	}
	// Stable, so resources that tie keep the order of creation, and pages
	// of one search neither skip nor repeat a resource.
	slices.SortStableFunc(matches, func(a, b *storedResource) int { return sq.compare(a.body, b.body) })

	base := root + "/fhir/"
	bundle := map[string]any{
		"resourceType": "Bundle",
		"type":         "searchset",
		"total":        len(matches),
	}
	links := []any{map[string]any{"relation": "self", "url": base + req.typ + "?" + sq.used.Encode()}}
	count := sq.count
	if sq.summaryCount {
		count = 0
	}
	if end := sq.offset + count; end < len(matches) && count > 0 {
		next := sq.used // the self link is written
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
	if len(sq.unsupported) > 0 {
		for i := range sq.unsupported {
			sq.unsupported[i] += "; ignored"
		}
		entries = append(entries, map[string]any{
			"resource": outcome("warning", "not-supported", sq.unsupported...),
			"search":   map[string]any{"mode": "outcome"},
		})
	}
	for i := sq.offset; i < len(matches) && i < sq.offset+count; i++ {
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
