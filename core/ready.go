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

func (s *session) ready(ctx context.Context, handle string) (*ReadyClient, error) {
	const op = "ready"
	if s.id == "" {
		return nil, newError(op, CodeNoLaunch, "the request has no browser session", nil)
	}
	if len(handle) > 128 {
		return nil, newError(op, CodeNoLaunch, "the launch handle is malformed", nil)
	}
	if handle == "" {
		h, err := s.latestHandle(ctx, op)
		if errors.Is(err, ErrNotFound) {
			return nil, newError(op, CodeNoLaunch, "this browser has no launch", unsealed(err))
		}
		if err != nil {
			return nil, err
		}
		handle = h
	}
	rec, err := s.engine.loadLaunch(ctx, s.store, op, s.id, handle)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, newError(op, CodeNoLaunch, "this browser has no launch with that handle (expired, logged out or never made)", unsealed(err))
	case err != nil:
		return nil, err
	}
	rc, err := s.readyClient(op, handle, rec)
	if err != nil {
		return nil, err
	}
	if rc.needsRefresh() {
		if _, _, err := rc.refresh(ctx, op, ""); err != nil {
			return nil, err
		}
	}
	return rc, nil
}

// readyClient makes the client of a launch record.
func (s *session) readyClient(op, handle string, rec launchRecord) (*ReadyClient, error) {
	is, base, err := s.engine.launchIssuer(op, rec.Context.Issuer)
	if err != nil {
		return nil, err // no longer an accepted issuer: its token is not used
	}
	return &ReadyClient{session: s, handle: handle, issuer: is, base: base, rec: rec}, nil
}

// ReadyClient is one launch, ready to use: its launch context, and (see
// fhir.go) FHIR access with the launch's token, refreshed when needed. It is
// made per request by [Engine.Ready] (or [Engine.Callback]) and safe for concurrent use.
type ReadyClient struct {
	session *session
	handle  string
	issuer  *Issuer  // the issuer's settings; never changes
	base    *url.URL // the FHIR base URL, parsed once; never changes

	mu  sync.Mutex // guards rec, which a refresh replaces
	rec launchRecord
}

// Handle returns the launch handle. Carry it in the app's URLs (as
// adapters.HandleParam) or requests (as adapters.HandleHeader) to stay on this launch.
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
