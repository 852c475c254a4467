package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/fhirware/smart/core/fhir"
)

// maxHandleLen bounds a launch handle a request may name: the engine's are
// 43 bytes.
const maxHandleLen = 128

func (s *session) ready(ctx context.Context, handle string) (*ReadyClient, error) {
	const op = "ready"
	if s.id == "" {
		return nil, newError(op, CodeNoLaunch, "the request has no browser session", nil)
	}
	if len(handle) > maxHandleLen {
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
	rec, err := s.loadLaunch(ctx, op, handle)
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

// loadLaunch loads the session's launch record of handle: the one read
// ahead for the request (see prefetch.go) when there is one, checked
// against the session as the Storage's is.
func (s *session) loadLaunch(ctx context.Context, op, handle string) (launchRecord, error) {
	if rec, err, ok := s.engine.prefetched(ctx, handle); ok {
		return ownedBy(rec, err, s.id)
	}
	return s.engine.loadLaunch(ctx, s.store, op, s.id, handle)
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

// LaunchContext returns the launch context. It makes no network call. The
// context is the caller's own copy: changing it changes no other request's.
func (rc *ReadyClient) LaunchContext() LaunchContext {
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

// FHIR media type sent as Accept.
const fhirJSON = "application/fhir+json"

// fhirVersion is the launch's FHIR version, "" when unknown.
func (rc *ReadyClient) fhirVersion() string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.rec.FHIRVersion
}

// acceptOf is the Accept header of FHIR requests that set none: FHIR
// JSON, in the FHIR version when it is known.
func acceptOf(version string) string {
	if mm := majorMinor(version); mm != "" {
		return fhirJSON + "; fhirVersion=" + mm
	}
	return fhirJSON
}

// FHIR returns the launch's FHIR client: a [fhir.Client] for the launch's
// FHIR server whose requests carry the launch's bearer token, refreshed as
// needed. When the FHIR version is known (Discovery.FHIRVersion, when the
// launch's discovery read the CapabilityStatement), the client asks for
// it: Accept: application/fhir+json; fhirVersion=4.0 for "4.0.1" (see
// [fhir.Client.WithVersion]), also on requests through its HTTPClient
// that set no Accept of their own. Its HTTPClient hands the same to any
// other FHIR library. It is made once per ReadyClient, at the first call.
//
// The token, and the issuer's extra headers (Issuer.Header), are added
// only to requests to the launch's FHIR server origin (scheme, host and
// port): a request to any other origin (through the client's Do, say, for
// an absolute fhirUser on another server of the EHR) goes without them,
// and an Authorization header the caller set on it is dropped. Requests
// themselves are never modified.
//
// A request to another origin must be https, or http with
// Config.AllowInsecureHTTP: any other fails with CodeInvalidRequest and is
// not sent. Unless Config.AllowPrivateNetworks is set, it connects only to
// public addresses (see Config.AllowAnyIssuer), in allowlist mode too,
// where the FHIR server itself may be on a private network: a refused
// address fails with CodeFHIRRequestFailed. Such a request goes through a
// client whose Transport is a clone of Config.HTTPClient's; when that
// Transport is not an *http.Transport, which the address check needs,
// every request to another origin fails, unless AllowPrivateNetworks is
// set. Redirects are followed on the request's own origin only.
//
// A token about to expire is refreshed first; a 401 answer refreshes once
// and retries with the new token, when the request body can be replayed
// (req.GetBody is set, as http.NewRequest does for in-memory bodies).
// Concurrent requests of one launch share one refresh, and a request that
// finds the launch refreshed meanwhile (by another request or app
// instance) uses that token instead of refreshing again. A launch whose
// tokens ran out, or whose refreshed token the server still refuses with
// 401, fails its requests with an error for which errors.Is(err,
// CodeLaunchExpired) holds, through the fhir.Error.
//
// Response bodies are capped at Config.MaxFHIRResponseBytes. Every request
// is bounded by its context and by the engine's HTTP client timeout (15
// seconds unless Config.HTTPClient sets its own).
func (rc *ReadyClient) FHIR() *fhir.Client {
	rc.fhirOnce.Do(func() {
		rc.fhirClient = rc.session.engine.fhirClient(rc.issuer, rc.base, rc, rc.fhirVersion())
	})
	return rc.fhirClient
}

// tokenSource is where the bearer token of a FHIR client the engine hands
// out comes from: a launch, refreshed with its refresh token
// (*ReadyClient), or SMART Backend Services, asked for again
// (*backendToken).
type tokenSource interface {
	// accessToken returns a fresh access token.
	accessToken(ctx context.Context) (Secret, error)
	// refresh returns a fresh access token other than stale, the one the
	// FHIR server refused; refreshed reports whether a token request
	// made for this call (or one it joined) got it.
	refresh(ctx context.Context, op string, stale Secret) (tok Secret, refreshed bool, err error)
	// refusedRefreshed is the error of a request that the FHIR server
	// refuses with 401 even with a refreshed token, or nil when that
	// answer goes to the caller as it is.
	refusedRefreshed() error
}

// fhirClient returns a FHIR client for the FHIR server of is, at base,
// whose requests carry the tokens of tokens and ask for the FHIR version
// version ("" for none); see [ReadyClient.FHIR] for its rules.
func (e *Engine) fhirClient(is *Issuer, base *url.URL, tokens tokenSource, version string) *fhir.Client {
	t := &fhirTransport{engine: e, issuer: is, base: base, tokens: tokens, accept: acceptOf(version)}
	hc := &http.Client{Transport: t, CheckRedirect: noRedirects}
	// The base is the issuer's URL, checked by New or by the issuer rule:
	// NewClient cannot refuse it.
	c, _ := fhir.NewClient(is.URL, hc)
	return c.WithVersion(version)
}

// noRedirects leaves redirects to the engine's own clients, under whose
// rules (same origin only) fhirTransport's requests already ran.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// fhirTransport is the RoundTripper of a FHIR client the engine hands out.
type fhirTransport struct {
	engine *Engine
	issuer *Issuer  // the issuer's settings; never changes
	base   *url.URL // the FHIR base URL, parsed once; never changes
	tokens tokenSource
	accept string // the Accept header of requests that set none
}

func (t *fhirTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.do(req.Context(), req)
}

// sameOrigin reports whether u is on the FHIR server's origin: same
// scheme, host and port.
func (t *fhirTransport) sameOrigin(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, t.base.Scheme) && strings.EqualFold(u.Host, t.base.Host)
}

// do sends req with the bearer token; see [ReadyClient.FHIR].
func (t *fhirTransport) do(ctx context.Context, req *http.Request) (*http.Response, error) {
	if !t.sameOrigin(req.URL) {
		if err := t.checkOutside(req); err != nil {
			if req.Body != nil {
				req.Body.Close() // as a RoundTripper must
			}
			return nil, err
		}
		out := req.Clone(ctx)
		out.Header.Del("Authorization")
		return t.roundTrip(out)
	}
	tok, err := t.tokens.accessToken(ctx)
	if err != nil {
		if req.Body != nil {
			req.Body.Close() // as a RoundTripper must
		}
		return nil, err
	}
	resp, err := t.send(ctx, req, tok)
	// A 401 refreshes the token and retries. The token that comes back may
	// be one another request stored meanwhile rather than a new one; when
	// that one is refused too, the request refreshes and retries once more.
	// A request never makes more than one refresh of its own.
	for retries := 0; err == nil && resp.StatusCode == http.StatusUnauthorized && retries < 2; retries++ {
		if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
			return resp, nil // cannot replay the body; the caller sees the 401
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		var refreshed bool
		if tok, refreshed, err = t.tokens.refresh(ctx, "fhir", tok); err != nil {
			return nil, err
		}
		retry := req.Clone(ctx)
		if req.GetBody != nil {
			if retry.Body, err = req.GetBody(); err != nil {
				return nil, newError("fhir", CodeFHIRRequestFailed, "replaying the request body failed", err)
			}
		}
		resp, err = t.send(ctx, retry, tok)
		if refreshed {
			break
		}
	}
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		if refused := t.tokens.refusedRefreshed(); refused != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			return nil, refused
		}
	}
	return resp, err
}

// refusedRefreshed: a launch whose token the FHIR server refuses, even
// refreshed, is over for this server, and the user must launch again.
func (rc *ReadyClient) refusedRefreshed() error {
	return newError("fhir", CodeLaunchExpired, "the FHIR server refuses the launch's token, even refreshed", nil)
}

// send sends a copy of req to the FHIR origin with the issuer's headers
// and the bearer token.
func (t *fhirTransport) send(ctx context.Context, req *http.Request, tok Secret) (*http.Response, error) {
	out := req.Clone(ctx)
	for k, v := range t.issuer.Header {
		out.Header[k] = v
	}
	out.Header.Set("Authorization", "Bearer "+string(tok))
	return t.roundTrip(out)
}

// checkOutside refuses a request outside the FHIR server's origin that is
// not https (nor http with AllowInsecureHTTP).
func (t *fhirTransport) checkOutside(req *http.Request) error {
	u := req.URL
	if strings.EqualFold(u.Scheme, "https") || (strings.EqualFold(u.Scheme, "http") && t.engine.cfg.AllowInsecureHTTP) {
		return nil
	}
	return newError("fhir", CodeInvalidRequest, "a request outside the FHIR server was refused: only https URLs are fetched there",
		fmt.Errorf("%s is not https (set AllowInsecureHTTP for local development)", quoteShort(printable(u.Scheme+"://"+u.Host))))
}

// roundTrip sends a request the caller owns through the engine's FHIR
// client: for a URL outside the FHIR server's origin, its twin with the
// address guard (see newOutsideClient).
func (t *fhirTransport) roundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", t.accept)
	}
	client := t.engine.fhir
	if !t.sameOrigin(req.URL) {
		client = t.engine.outside
	}
	resp, err := t.traced(client, req)
	if err != nil {
		return nil, newError("fhir", CodeFHIRRequestFailed, "the FHIR request failed", withoutURL(err))
	}
	return resp, nil
}

// withoutURL takes a *url.Error's URL out of err: its path and query may
// name a patient, and stay out of messages and logs. So does net/http's
// error about a redirect whose Location does not parse, which quotes it.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	if strings.Contains(err.Error(), "Location header") {
		return errors.New("the server sent a redirect with a malformed Location")
	}
	return err
}
