package core

import (
	"context"
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Ready returns the client for one of the session's launches: the one named
// by handle, or the most recent when handle is empty. It makes no network
// call while the access token is fresh; an expired token is refreshed once
// (see [ReadyClient.Refresh]).
//
// A handle names a launch only within its own browser session: another
// session's handle gives CodeNoSession.
func (s *Session) Ready(ctx context.Context, handle string) (*ReadyClient, error) {
	const op = "ready"
	if s.id == "" {
		return nil, newError(op, CodeNoSession, "the request has no browser session", nil)
	}
	if len(handle) > 128 {
		return nil, newError(op, CodeNoSession, "the launch handle is malformed", nil)
	}
	if handle == "" {
		h, err := s.latestHandle(ctx, op)
		if errors.Is(err, ErrNotFound) {
			return nil, newError(op, CodeNoSession, "this browser session has no launch; launch the app from the EHR", unsealed(err))
		}
		if err != nil {
			return nil, err
		}
		handle = h
	}
	rec, err := s.engine.loadLaunch(ctx, s.store, op, s.id, handle)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, newError(op, CodeNoSession, "this browser session has no launch with that handle (expired, logged out or never made); launch the app again", unsealed(err))
	case err != nil:
		return nil, err
	}
	is, base, err := s.engine.launchIssuer(op, rec.Context.Issuer)
	if err != nil {
		return nil, err // no longer an accepted issuer: its token is not used
	}
	rc := &ReadyClient{session: s, handle: handle, issuer: is, base: base, rec: rec}
	if rc.needsRefresh() {
		if _, _, err := rc.refresh(ctx, op, ""); err != nil {
			return nil, err
		}
	}
	return rc, nil
}

// ReadyClient is one launch, ready to use: its launch context, and (see
// fhir.go) FHIR access with the launch's token, refreshed when needed. It is
// made per request by [Session.Ready] and safe for concurrent use.
type ReadyClient struct {
	session *Session
	handle  string
	issuer  *Issuer  // the issuer's settings; never changes
	base    *url.URL // the FHIR base URL, parsed once; never changes

	mu  sync.Mutex // guards rec, which a refresh replaces
	rec launchRecord
}

// Handle returns the launch handle. Carry it in the app's URLs (as
// HandleParam) or requests (as HandleHeader) to stay on this launch.
func (rc *ReadyClient) Handle() string { return rc.handle }

// Context returns the launch context. It makes no network call. The
// context is the caller's own copy: changing it changes no other request's.
func (rc *ReadyClient) Context() LaunchContext {
	rc.mu.Lock()
	lc := rc.rec.Context
	rc.mu.Unlock()
	lc.FHIRContext = slices.Clone(lc.FHIRContext)
	lc.Extra = maps.Clone(lc.Extra)
	return lc
}

// Issuer returns the FHIR base URL of the launch.
func (rc *ReadyClient) Issuer() string { return rc.issuer.URL }

// Patient is the patient in context; its zero value when there is none.
func (rc *ReadyClient) Patient() ContextRef {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.ref("Patient", rc.rec.Context.Patient)
}

// Encounter is the encounter in context; its zero value when there is none.
func (rc *ReadyClient) Encounter() ContextRef {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.ref("Encounter", rc.rec.Context.Encounter)
}

// User is the logged-in user (the id_token's fhirUser): a Practitioner,
// Patient, RelatedPerson or Person; its zero value when there is none. A
// fhirUser on another server than the launch's keeps its absolute URL, and
// Read fetches it without the token, over https from a public address
// only (see [ReadyClient.Do] for the rule and its switches).
func (rc *ReadyClient) User() ContextRef {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return ContextRef{rc: rc, ref: rc.rec.Context.User}
}

// ref builds a ContextRef; the caller holds rc.mu. An id that is not a
// FHIR id (such as "..", in a record stored before the callback refused
// it) gives the zero ContextRef: no URL is built from it.
func (rc *ReadyClient) ref(typ, id string) ContextRef {
	if !validID(id) {
		return ContextRef{rc: rc}
	}
	return ContextRef{rc: rc, ref: Reference{Type: typ, ID: id, Reference: typ + "/" + id}}
}

// ContextRef is a resource of the launch context: the patient, encounter or
// user. Its accessors cost no network call; Read fetches the resource.
type ContextRef struct {
	rc  *ReadyClient
	ref Reference
}

// ID returns the resource id, or "".
func (r ContextRef) ID() string { return r.ref.ID }

// Type returns the resource type, or "".
func (r ContextRef) Type() string { return r.ref.Type }

// Reference returns "Type/id" (or an absolute URL for a resource on another
// server), or "".
func (r ContextRef) Reference() string { return r.ref.Reference }

// IsZero reports whether the launch has no such resource in context.
func (r ContextRef) IsZero() bool { return r.ref.IsZero() }

// Read fetches the resource from the FHIR server and decodes its JSON into
// v. It fails with CodeResourceNotFound when the launch has no such
// resource in context.
func (r ContextRef) Read(ctx context.Context, v any) error {
	if r.IsZero() {
		return newError("fhir", CodeResourceNotFound, "the launch has no such resource in context", nil)
	}
	return r.rc.Read(ctx, r.ref.Reference, v)
}

// Validate checks, without a network call, that the launch has an access
// token that has not expired (allowing for Config.Leeway).
func (rc *ReadyClient) Validate(ctx context.Context) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.rec.Tokens.Access == "" {
		return newError("validate", CodeSessionExpired, "the launch has no access token", nil)
	}
	if rc.expiredLocked() {
		return newError("validate", CodeSessionExpired, "the access token has expired", nil)
	}
	return nil
}

func (rc *ReadyClient) needsRefresh() bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.expiredLocked()
}

// expiredLocked reports whether the token is expired or about to be.
func (rc *ReadyClient) expiredLocked() bool {
	e := rc.session.engine
	return rc.rec.Tokens.stale(e.cfg.Now(), e.cfg.Leeway)
}

// sameOrigin reports whether u is on the launch's FHIR server origin:
// same scheme, host and port.
func (rc *ReadyClient) sameOrigin(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, rc.base.Scheme) && strings.EqualFold(u.Host, rc.base.Host)
}

type contextKey struct{ name string }

func (k *contextKey) String() string { return "smart context value " + k.name }

var readyClientKey = &contextKey{"ReadyClient"}

// NewContext returns a copy of ctx carrying rc.
func NewContext(ctx context.Context, rc *ReadyClient) context.Context {
	return context.WithValue(ctx, readyClientKey, rc)
}

// FromContext returns the ReadyClient in ctx, or nil.
func FromContext(ctx context.Context) *ReadyClient {
	rc, _ := ctx.Value(readyClientKey).(*ReadyClient)
	return rc
}
