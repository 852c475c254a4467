package fhir

import (
	"net/url"
	"strings"
)

// Reference is a FHIR reference split into its parts.
type Reference struct {
	// Type is the resource type, such as "Practitioner".
	Type string `json:"type,omitempty"`
	// ID is the resource id.
	ID string `json:"id,omitempty"`
	// URL is the absolute URL of a resource on another server than the
	// FHIR base the reference was parsed against, as given (less a
	// trailing "/"); "" for a resource on that server. A [Client] for the
	// base does not fetch it (see [Client.Read]).
	URL string `json:"url,omitempty"`
}

// String returns URL when it is set, otherwise "Type/ID", the reference
// relative to the FHIR base; "" for the zero Reference.
func (r Reference) String() string {
	switch {
	case r.URL != "":
		return r.URL
	case r.Type != "" && r.ID != "":
		return r.Type + "/" + r.ID
	}
	return ""
}

// IsZero reports whether r is the zero Reference.
func (r Reference) IsZero() bool { return r == Reference{} }

// ParseReference normalises a FHIR reference, relative ("Practitioner/123")
// or absolute ("https://ehr.example/fhir/Practitioner/123"), against the
// FHIR base URL. An absolute reference under base becomes relative: URL
// is "". One on another server keeps its URL as given. A "_history/n"
// suffix is dropped. It returns false for anything that is not a
// reference to a resource, and for any reference with a "." or ".." path
// segment (percent-encoded or not), which names another resource than it
// seems to once a server resolves it.
func ParseReference(base, ref string) (Reference, bool) {
	if ref == "" {
		return Reference{}, false
	}
	abs := strings.Contains(ref, "://")
	path := ref
	if abs {
		u, err := url.Parse(ref)
		if err != nil || u.Host == "" {
			return Reference{}, false
		}
		u.RawQuery, u.Fragment = "", ""
		full := u.String()
		if b := strings.TrimRight(base, "/") + "/"; base != "" && strings.HasPrefix(full, b) {
			path, abs = strings.TrimPrefix(full, b), false
		} else {
			path = strings.TrimLeft(u.Path, "/")
		}
		if hasDotSegment(u.Path) { // decoded: %2e%2e is a dot segment too
			return Reference{}, false
		}
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if hasDotSegment(path) {
		return Reference{}, false
	}
	if n := len(parts); n >= 4 && parts[n-2] == "_history" {
		parts = parts[:n-2]
	}
	if len(parts) < 2 {
		return Reference{}, false
	}
	typ, id := parts[len(parts)-2], parts[len(parts)-1]
	if !validType(typ) || !validID(id) || (!abs && len(parts) != 2) {
		return Reference{}, false
	}
	r := Reference{Type: typ, ID: id}
	if abs {
		r.URL = strings.TrimSuffix(ref, "/")
	}
	return r, true
}

// hasDotSegment reports whether a URL path has a "." or ".." segment, with
// "/" or a backslash (which some servers take for "/") as separators.
// Such a path names another resource than it seems to once a server or
// proxy resolves it, so no URL the client builds or follows may have one.
func hasDotSegment(path string) bool {
	for seg := range strings.FieldsFuncSeq(path, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// validType reports whether s looks like a FHIR resource type name. It
// accepts types R4 does not list (a later version's, a server's own);
// knownType names R4's.
func validType(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// knownType returns s when it is a resource type of FHIR R4, else "".
func knownType(s string) string {
	if resourceTypes[s] {
		return s
	}
	return ""
}

// validID reports whether s is a FHIR id: [A-Za-z0-9\-\.]{1,64}, and not
// "." or "..", which FHIR's pattern allows but which are dot segments in a
// URL path: "Patient/.." would name the FHIR base, not a patient.
func validID(s string) bool {
	if s == "" || len(s) > 64 || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
