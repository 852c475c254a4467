package core

import (
	"context"
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/fhirware/smart/core/fhir"
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

// ReadyClient is one launch, ready to use: its launch context, and FHIR
// access with the launch's token, refreshed when needed ([ReadyClient.FHIR]).
// It is made per request by [Engine.Ready] (or [Engine.Callback]) and is
// safe for concurrent use.
type ReadyClient struct {
	session *session
	handle  string
	issuer  *Issuer  // the issuer's settings; never changes
	base    *url.URL // the FHIR base URL, parsed once; never changes

	mu  sync.Mutex // guards rec, which a refresh replaces
	rec launchRecord

	fhirOnce   sync.Once
	fhirClient *fhir.Client
}

// Browser returns the id of the browser the launch belongs to: with
// Handle, what [Engine.Ready] needs to find the launch again, from the
// app's background code, say.
func (rc *ReadyClient) Browser() string { return rc.session.id }

// Handle returns the launch handle. Carry it in the app's URLs (as
// adapters.HandleParam) or requests (as adapters.HandleHeader) to stay on
// this launch.
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

// Patient is the patient in context, such as {Type: "Patient", ID:
// "123"}: read it with rc.FHIR().Read(ctx, rc.Patient().String(), &p). It
// is the zero Reference when there is none.
func (rc *ReadyClient) Patient() fhir.Reference {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return contextRef("Patient", rc.rec.Context.Patient)
}

// Encounter is the encounter in context; the zero Reference when there is
// none.
func (rc *ReadyClient) Encounter() fhir.Reference {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return contextRef("Encounter", rc.rec.Context.Encounter)
}

// User is the logged-in user (the id_token's fhirUser): a Practitioner,
// Patient, RelatedPerson or Person; the zero Reference when there is none.
// A fhirUser on another server than the launch's keeps its absolute URL
// (Reference.URL): the FHIR client does not Read it, but its Do (or
// HTTPClient) fetches it without the token, over https from a public
// address only (see [ReadyClient.FHIR] for the rule and its switches).
func (rc *ReadyClient) User() fhir.Reference {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.rec.Context.User
}

// contextRef is the Reference of a context id. An id that is not a FHIR id
// (such as "..", in a record stored before the callback refused it) gives
// the zero Reference: no URL is built from it.
func contextRef(typ, id string) fhir.Reference {
	if !validID(id) {
		return fhir.Reference{}
	}
	return fhir.Reference{Type: typ, ID: id}
}

// validID reports whether s is a FHIR id that can stand in a URL path.
func validID(s string) bool {
	r, ok := fhir.ParseReference("", "Patient/"+s)
	return ok && r.ID == s
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
