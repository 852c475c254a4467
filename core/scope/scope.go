package scope

import (
	"net/url"
	"slices"
	"strings"
)

// Interaction is a set of FHIR interactions a resource scope grants: the
// letters c, r, u, d and s of SMART's version 2 scopes. Combine them with |.
type Interaction uint8

// The interactions. Version 1's read is Read|Search, write is
// Create|Update|Delete, and * is all five.
const (
	Create Interaction = 1 << iota // c: create
	Read                           // r: read and vread
	Update                         // u: update and patch
	Delete                         // d: delete
	Search                         // s: search and history
)

// letters are the version 2 permission letters, in the order a scope must
// list them.
const letters = "cruds"

// String returns the interactions as version 2 letters, such as "rs".
func (i Interaction) String() string {
	var b strings.Builder
	for n := range len(letters) {
		if i&(1<<n) != 0 {
			b.WriteByte(letters[n])
		}
	}
	return b.String()
}

// resourceScope is one parsed resource scope, such as
// patient/Observation.rs?category=laboratory.
type resourceScope struct {
	context string      // "patient", "user" or "system"
	typ     string      // a resource type, or "*"
	allows  Interaction // never zero
	query   url.Values  // nil when the scope is not restricted
	raw     string      // the token as written
}

// reaches reports whether r is a scope on typ in context ctx: it names the
// type, or "*".
func (r *resourceScope) reaches(ctx, typ string) bool {
	return r.context == ctx && (r.typ == "*" || r.typ == typ)
}

// Set is a parsed scope: the space-separated tokens of a scope parameter,
// with its resource scopes understood. The zero value is the empty scope.
// A Set is never changed once made and is safe for concurrent use.
type Set struct {
	tokens    []string        // every token, as written, without duplicates
	resources []resourceScope // the tokens that are resource scopes
}

// linearDedupe is the number of tokens up to which Parse finds duplicates
// by a scan, without a map.
const linearDedupe = 32

// Parse reads a space-separated scope. It never fails: a token that is not
// a well-formed resource scope (an unknown context, permission letters out
// of order, a malformed query) is kept as a plain token, which [Set.Has]
// finds and [Set.Allows] never counts.
func Parse(s string) Set {
	var set Set
	var seen map[string]bool // past a few tokens, so that a scope of many tokens costs linear time
	for tok := range strings.FieldsSeq(s) {
		switch {
		case seen != nil:
			if seen[tok] {
				continue
			}
			seen[tok] = true
		case slices.Contains(set.tokens, tok):
			continue
		case len(set.tokens) == linearDedupe:
			seen = make(map[string]bool, 2*linearDedupe)
			for _, t := range set.tokens {
				seen[t] = true
			}
			seen[tok] = true
		}
		set.tokens = append(set.tokens, tok)
		if r, ok := parseResource(tok); ok {
			set.resources = append(set.resources, r)
		}
	}
	return set
}

// parseResource reads a resource scope: context/type.permissions, with a
// query after "?" for version 2 permissions.
func parseResource(tok string) (resourceScope, bool) {
	r := resourceScope{raw: tok}
	rest, query, hasQuery := strings.Cut(tok, "?")
	ctx, rest, ok := strings.Cut(rest, "/")
	if !ok || (ctx != "patient" && ctx != "user" && ctx != "system") {
		return r, false
	}
	typ, perms, ok := strings.Cut(rest, ".")
	if !ok || !validType(typ) {
		return r, false
	}
	r.context, r.typ = ctx, typ
	switch perms {
	case "read":
		r.allows = Read | Search
	case "write":
		r.allows = Create | Update | Delete
	case "*":
		r.allows = Create | Read | Update | Delete | Search
	default:
		r.allows = parseLetters(perms)
		if r.allows == 0 {
			return r, false
		}
		if hasQuery {
			q, err := url.ParseQuery(query)
			if err != nil || len(q) == 0 {
				return r, false
			}
			r.query = q
		}
		return r, true
	}
	return r, !hasQuery // version 1 scopes have no query
}

// parseLetters reads version 2 permission letters, which must be a
// non-empty subsequence of "cruds"; it returns 0 when they are not.
func parseLetters(p string) Interaction {
	var i Interaction
	next := 0
	for n := range len(p) {
		k := strings.IndexByte(letters[next:], p[n])
		if k < 0 {
			return 0
		}
		i |= 1 << (next + k)
		next += k + 1
	}
	return i
}

// validType reports whether t is "*" or looks like a FHIR resource type: an
// upper-case ASCII letter, then ASCII letters.
func validType(t string) bool {
	if t == "*" {
		return true
	}
	if t == "" || t[0] < 'A' || t[0] > 'Z' {
		return false
	}
	for n := range len(t) {
		c := t[n]
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// String returns the scope's tokens, as written, separated by spaces.
func (s Set) String() string { return strings.Join(s.tokens, " ") }

// Tokens returns the scope's tokens, as written, in order and without
// duplicates.
func (s Set) Tokens() []string { return slices.Clone(s.tokens) }

// Has reports whether the scope has token exactly as written, such as
// "openid", "fhirUser", "launch/patient" or "offline_access". It does not
// read resource scopes: use [Set.Allows] for those.
func (s Set) Has(token string) bool { return slices.Contains(s.tokens, token) }

// Allows reports whether the scope grants every interaction in i on the
// resource type typ in the context ctx ("patient", "user" or "system"),
// for every resource of that type the context reaches: a version 1 or 2
// scope names the type or "*" and has the interactions, and has no query.
//
// A scope with a query, such as patient/Observation.rs?category=laboratory,
// grants only part of a type, so Allows does not count it; ask
// [Set.Restrictions] what such scopes allow.
//
// The context is asked for, not guessed: patient/Observation.rs and
// user/Observation.rs reach different data.
func (s Set) Allows(ctx, typ string, i Interaction) bool {
	var have Interaction
	for n := range s.resources {
		r := &s.resources[n]
		if r.query == nil && r.reaches(ctx, typ) {
			have |= r.allows
		}
	}
	return i != 0 && have&i == i
}

// Restrictions returns the queries of the scope's restricted grants of i on
// typ in ctx: each scope with a query that names typ (or "*") and has
// every interaction in i gives its query, such as category=laboratory. The
// access they grant is the union of what the queries select. Restrictions
// returns nil when no restricted scope covers i; when [Set.Allows] reports
// true as well, the restrictions add nothing. The values are copies.
func (s Set) Restrictions(ctx, typ string, i Interaction) []url.Values {
	var qs []url.Values
	for n := range s.resources {
		r := &s.resources[n]
		if r.query != nil && i != 0 && r.reaches(ctx, typ) && r.allows&i == i {
			qs = append(qs, cloneValues(r.query))
		}
	}
	return qs
}

// Missing returns the tokens of requested that this scope, taken as the
// grant, does not cover, in requested's order; nil when it covers them all.
//
// A resource scope is covered when, for each interaction it asks for, the
// grant has a scope in the same context, on the same type or "*", with that
// interaction and either no query or the same query: so a granted
// patient/Observation.rs covers a requested patient/Observation.read, and
// a granted patient/Patient.read does not cover patient/*.read. A
// requested "*" type is covered only by a granted "*". Every other token
// must be granted as written.
func (s Set) Missing(requested Set) []string {
	var missing []string
	for _, tok := range requested.tokens {
		if s.Has(tok) {
			continue
		}
		r, ok := parseResource(tok)
		if !ok || !s.coversResource(&r) {
			missing = append(missing, tok)
		}
	}
	return missing
}

// coversResource reports whether the scope grants every interaction of the
// requested resource scope want, on its type and within its query.
func (s Set) coversResource(want *resourceScope) bool {
	var have Interaction
	for n := range s.resources {
		g := &s.resources[n]
		if !g.reaches(want.context, want.typ) {
			continue
		}
		if g.query != nil && (want.query == nil || g.query.Encode() != want.query.Encode()) {
			continue
		}
		have |= g.allows
	}
	return have&want.allows == want.allows
}

// cloneValues copies q and its slices.
func cloneValues(q url.Values) url.Values {
	c := make(url.Values, len(q))
	for k, v := range q {
		c[k] = slices.Clone(v)
	}
	return c
}
