package smarttest

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
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

// searchQuery is a search's query string, understood: which resources
// match, in what order, which page.
type searchQuery struct {
	filters       []func(body map[string]any) bool // all must hold
	sort          []sortKey
	count, offset int
	summaryCount  bool       // _summary=count: the total, no entries
	used          url.Values // the parameters applied, for the self and next links
	unsupported   []string   // a sentence for each parameter not applied
}

// sortKey is one key of _sort.
type sortKey struct {
	desc  bool
	value func(body map[string]any) (string, bool) // false: no value, sorts last
}

// tokenParams are the token search parameters smarttest honours for some
// resource types only, with the codings each one reads. (The date
// parameter's types are those of clinicalDates.)
var tokenParams = map[string]map[string]func(body map[string]any) []map[string]any{
	"Observation": {"code": codings("code"), "category": codings("category")},
	"Condition":   {"code": codings("code"), "category": codings("category")},
}

// searchParams lists the search parameters of a type for the
// CapabilityStatement.
func searchParams(typ string) []any {
	params := []any{
		map[string]any{"name": "_id", "type": "token"},
		map[string]any{"name": "_lastUpdated", "type": "date"},
		map[string]any{"name": "patient", "type": "reference"},
		map[string]any{"name": "subject", "type": "reference"},
	}
	if clinicalDates[typ] != nil {
		params = append(params, map[string]any{"name": "date", "type": "date"})
	}
	for _, name := range slices.Sorted(maps.Keys(tokenParams[typ])) {
		params = append(params, map[string]any{"name": name, "type": "token"})
	}
	return params
}

// ignoredParams are result parameters a search may carry that change
// nothing the client relies on: every answer is JSON, with every element
// and an accurate total (FHIR lets a server return more elements than
// _elements or _summary ask for). They are not repeated in links.
var ignoredParams = map[string]bool{"_elements": true, "_pretty": true, "_total": true}

// parseSearch reads the query of a search on typ. It answers 400 for a
// malformed value of a parameter it honours; parameters it does not honour
// are listed in unsupported.
func parseSearch(root, typ string, q url.Values) (*searchQuery, *fhirResult) {
	sq := &searchQuery{count: defaultPageSize, used: url.Values{}}
	bad := func(diagnostics string) (*searchQuery, *fhirResult) {
		r := errResult(http.StatusBadRequest, "invalid", diagnostics)
		return nil, &r
	}
	for _, name := range slices.Sorted(maps.Keys(q)) {
		for _, v := range q[name] {
			if v == "" {
				continue // FHIR ignores a parameter without a value
			}
			var err string
			switch name {
			case "_count", offsetParam:
				n, perr := strconv.Atoi(v)
				if perr != nil || n < 0 {
					return bad(name + " must be a number >= 0")
				}
				if name == "_count" {
					sq.count = min(n, maxPageSize)
				} else {
					sq.offset = n
				}
				sq.used.Set(name, strconv.Itoa(n))
			case "_sort":
				err = sq.parseSort(typ, v)
			case "_summary":
				if v == "count" {
					sq.summaryCount = true
					sq.used.Set(name, v)
				} else if v != "true" && v != "false" && v != "text" && v != "data" {
					return bad("_summary must be true, false, text, data or count")
				}
			case "_format":
				if !strings.Contains(v, "json") {
					sq.unsupported = append(sq.unsupported, "_format: only JSON is supported")
				}
			case "_id":
				ids := splitValues(v)
				for i, id := range ids {
					ids[i] = unescape(id)
				}
				sq.add(name, v, func(b map[string]any) bool { return slices.Contains(ids, str(b["id"])) })
			case "patient", "subject":
				refs := splitValues(v)
				for i, r := range refs {
					refs[i] = patientRef(root, name, unescape(r))
				}
				sq.add(name, v, func(b map[string]any) bool {
					return slices.ContainsFunc(refs, func(r string) bool { return refersTo(b, r) })
				})
			case "_lastUpdated":
				err = sq.parseDate(name, v, lastUpdated)
			default:
				switch read := tokenParams[typ][name]; {
				case name == "date" && clinicalDates[typ] != nil:
					err = sq.parseDate(name, v, clinicalDates[typ])
				case read != nil:
					err = sq.parseToken(name, v, read)
				case !ignoredParams[name]:
					sq.unsupported = append(sq.unsupported, fmt.Sprintf("the search parameter %q is not supported for %s", name, typ))
				}
			}
			if err != "" {
				return bad(err)
			}
		}
	}
	return sq, nil
}

// matches reports whether a resource passes every filter.
func (sq *searchQuery) matches(body map[string]any) bool {
	for _, f := range sq.filters {
		if !f(body) {
			return false
		}
	}
	return true
}

// compare orders two resources by the keys of _sort. A resource without a
// value for a key sorts after one with, in either direction.
func (sq *searchQuery) compare(a, b map[string]any) int {
	for _, k := range sq.sort {
		va, okA := k.value(a)
		vb, okB := k.value(b)
		switch {
		case okA && !okB:
			return -1
		case !okA && okB:
			return 1
		case !okA && !okB:
			continue
		}
		c := strings.Compare(va, vb)
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// add adds a filter and records the parameter as applied.
func (sq *searchQuery) add(name, v string, f func(body map[string]any) bool) {
	sq.filters = append(sq.filters, f)
	sq.used.Add(name, v)
}

// parseSort reads the comma-separated keys of _sort. Unknown keys are
// listed as unsupported and left out.
func (sq *searchQuery) parseSort(typ, v string) string {
	var used []string
	for key := range strings.SplitSeq(v, ",") {
		name, desc := strings.CutPrefix(key, "-")
		var value func(map[string]any) (dateRange, bool)
		switch {
		case name == "_id":
			sq.sort = append(sq.sort, sortKey{desc, func(b map[string]any) (string, bool) { return str(b["id"]), true }})
			used = append(used, key)
			continue
		case name == "_lastUpdated":
			value = lastUpdated
		case name == "date" && clinicalDates[typ] != nil:
			value = clinicalDates[typ]
		case name == "":
			return "_sort has an empty key"
		default:
			sq.unsupported = append(sq.unsupported, fmt.Sprintf("_sort: the key %q is not supported for %s", name, typ))
			continue
		}
		sq.sort = append(sq.sort, sortKey{desc, func(b map[string]any) (string, bool) {
			r, ok := value(b)
			return r.sortString(), ok
		}})
		used = append(used, key)
	}
	if len(used) > 0 {
		sq.used.Add("_sort", strings.Join(used, ","))
	}
	return ""
}

// parseDate reads a date parameter: comma-separated values, any of which
// may match the range read from a resource.
func (sq *searchQuery) parseDate(name, v string, read func(map[string]any) (dateRange, bool)) string {
	var matches []func(dateRange) bool
	for _, dv := range splitValues(v) {
		m, ok, supported := dateValue(unescape(dv))
		switch {
		case !ok:
			return name + ": a value is not a FHIR date with an optional prefix (eq, ne, lt, le, gt, ge, sa, eb)"
		case !supported:
			sq.unsupported = append(sq.unsupported, fmt.Sprintf("%s: the prefix ap is not supported", name))
			return ""
		}
		matches = append(matches, m)
	}
	sq.add(name, v, func(b map[string]any) bool {
		r, ok := read(b)
		return ok && slices.ContainsFunc(matches, func(m func(dateRange) bool) bool { return m(r) })
	})
	return ""
}

// parseToken reads a token parameter: comma-separated values of the forms
// code, system|code, |code (no system) and system| (any code of system).
func (sq *searchQuery) parseToken(name, v string, read func(map[string]any) []map[string]any) string {
	type token struct {
		system, code       string
		hasSystem, anyCode bool
	}
	var tokens []token
	for _, tv := range splitValues(v) {
		parts := splitEscaped(tv, '|')
		switch len(parts) {
		case 1:
			tokens = append(tokens, token{code: unescape(parts[0])})
		case 2:
			tokens = append(tokens, token{system: unescape(parts[0]), code: unescape(parts[1]), hasSystem: true, anyCode: parts[1] == ""})
		default:
			return name + ": a value has more than one unescaped |"
		}
	}
	sq.add(name, v, func(b map[string]any) bool {
		return slices.ContainsFunc(read(b), func(c map[string]any) bool {
			return slices.ContainsFunc(tokens, func(t token) bool {
				return (!t.hasSystem || str(c["system"]) == t.system) && (t.anyCode || str(c["code"]) == t.code)
			})
		})
	})
	return ""
}

// codings returns a reader of the codings of a CodeableConcept element, or
// of all the CodeableConcepts of a repeating one.
func codings(field string) func(body map[string]any) []map[string]any {
	return func(body map[string]any) []map[string]any {
		concepts, ok := body[field].([]any)
		if !ok {
			concepts = []any{body[field]}
		}
		var out []map[string]any
		for _, cc := range concepts {
			cc, _ := cc.(map[string]any)
			list, _ := cc["coding"].([]any)
			for _, c := range list {
				if c, ok := c.(map[string]any); ok {
					out = append(out, c)
				}
			}
		}
		return out
	}
}

// patientRef turns a patient or subject value into a reference relative to
// the base: "pat-1" and "Patient/pat-1" for either, and for patient any
// reference ending in the id, are "Patient/pat-1".
func patientRef(root, name, v string) string {
	switch {
	case name == "patient":
		return "Patient/" + lastSegment(v)
	case !strings.Contains(v, "/"):
		return "Patient/" + v
	}
	return trimBase(root, v)
}

// splitValues splits a parameter's value at the commas that separate
// alternatives; escaped commas (\,) stay.
func splitValues(v string) []string { return splitEscaped(v, ',') }

// splitEscaped splits s at each sep not escaped by a backslash. The parts
// keep their escapes; see unescape.
func splitEscaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// unescape removes the backslashes that escape ",", "|", "$" and "\" in a
// search value.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`,|$\`, s[i+1]) >= 0 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
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
