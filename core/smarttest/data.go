package smarttest

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// PatientSummary describes a patient of the sandbox, as the EHR page lists
// them.
type PatientSummary struct {
	ID        string // "pat-1"
	Name      string // "Amy Shaw"
	Gender    string // "female"
	BirthDate string // "1987-02-20"
}

// Patients returns the server's patients in order of creation: the
// samples pat-1, pat-2 and pat-3, and any created since.
func (s *Server) Patients() []PatientSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []PatientSummary
	for _, key := range s.store.order {
		res := s.store.byKey[key]
		if res.deleted || !strings.HasPrefix(key, "Patient/") {
			continue
		}
		out = append(out, PatientSummary{
			ID:        str(res.body["id"]),
			Name:      humanName(res.body),
			Gender:    str(res.body["gender"]),
			BirthDate: str(res.body["birthDate"]),
		})
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// humanName returns a resource's first name as "Given Family".
func humanName(body map[string]any) string {
	names, _ := body["name"].([]any)
	if len(names) == 0 {
		return ""
	}
	name, _ := names[0].(map[string]any)
	if t := str(name["text"]); t != "" {
		return t
	}
	var parts []string
	given, _ := name["given"].([]any)
	for _, g := range given {
		parts = append(parts, str(g))
	}
	if f := str(name["family"]); f != "" {
		parts = append(parts, f)
	}
	return strings.Join(parts, " ")
}

// storedResource is one resource in the store, in JSON-decoded form.
type storedResource struct {
	body    map[string]any
	version int
	deleted bool
}

// resourceStore holds the FHIR server's resources. The Server's mutex guards
// it.
type resourceStore struct {
	byKey map[string]*storedResource // by "Type/id"
	order []string                   // keys in order of creation
	next  map[string]int             // next numeric id suffix per type
}

// idPrefix is the id prefix of new resources of a type.
func idPrefix(typ string) string {
	switch typ {
	case "Patient":
		return "pat"
	case "Practitioner":
		return "prac"
	case "Encounter":
		return "enc"
	case "Observation":
		return "obs"
	case "Condition":
		return "cond"
	}
	return strings.ToLower(typ)
}

func (st *resourceStore) get(typ, id string) *storedResource {
	return st.byKey[typ+"/"+id]
}

// newID returns an unused id for a new resource of a type.
func (st *resourceStore) newID(typ string) string {
	for {
		st.next[typ]++
		id := fmt.Sprintf("%s-%d", idPrefix(typ), st.next[typ])
		if st.byKey[typ+"/"+id] == nil {
			return id
		}
	}
}

// put stores a new version of a resource, setting its id, resourceType and
// meta, and returns it.
func (st *resourceStore) put(typ, id string, body map[string]any, now time.Time) *storedResource {
	key := typ + "/" + id
	res := st.byKey[key]
	if res == nil {
		res = &storedResource{}
		st.byKey[key] = res
		st.order = append(st.order, key)
	}
	res.version++
	res.deleted = false
	body["resourceType"] = typ
	body["id"] = id
	meta, _ := body["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	meta["versionId"] = fmt.Sprint(res.version)
	meta["lastUpdated"] = now.UTC().Format(time.RFC3339)
	body["meta"] = meta
	res.body = body
	return res
}

// clone returns a deep copy, for rolling back a failed transaction.
func (st *resourceStore) clone() *resourceStore {
	c := &resourceStore{
		byKey: make(map[string]*storedResource, len(st.byKey)),
		order: append([]string(nil), st.order...),
		next:  make(map[string]int, len(st.next)),
	}
	for k, v := range st.byKey {
		c.byKey[k] = &storedResource{body: deepCopy(v.body).(map[string]any), version: v.version, deleted: v.deleted}
	}
	for k, v := range st.next {
		c.next[k] = v
	}
	return c
}

// deepCopy copies a JSON-decoded value.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		a := make([]any, len(v))
		for i, e := range v {
			a[i] = deepCopy(e)
		}
		return a
	}
	return v
}

// jsonValue round-trips v through JSON, so sample data has the same types
// (float64, []any, map[string]any) as data that came over the wire.
func jsonValue(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
}
