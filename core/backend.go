package core

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/fhirware/smart/core/fhir"
)

// SMART Backend Services (App Launch 2.2, "Backend Services"): the app
// acts as itself, with no user and no launch. It asks the issuer's token
// endpoint for an access token with grant_type=client_credentials and a
// private_key_jwt client assertion (the launch's assertion code:
// requestToken, authenticate, clientAssertion), for system/ scopes, and
// hands out the FHIR client a launch hands out, over the token.

// defaultBackendTokenLifetime is the lifetime taken for a Backend Services
// access token whose token response names none (SMART requires
// expires_in): short, so that such a token is asked for again soon.
const defaultBackendTokenLifetime = 5 * time.Minute

// backendRetryAfter is how long after a failed Backend Services token
// request the calls that need a token get its error instead of asking
// again: a program that loops over patients must not turn a failing token
// endpoint into a flood of token requests (each with its retries).
const backendRetryAfter = 2 * time.Second

// maxBackends bounds the Backend Services tokens an engine keeps, one per
// issuer and scope.
const maxBackends = 256

// Backend returns a FHIR client for the configured issuer iss (a FHIR base
// URL listed in Config.Issuers) that acts as the app itself, with no user
// and no launch: SMART Backend Services. Its requests carry an access
// token the issuer's token endpoint grants for scope, a space-separated
// list of system scopes such as "system/Patient.rs system/Observation.rs".
//
// The token is asked for with grant_type=client_credentials and a
// private_key_jwt client assertion signed by the issuer's Auth.Signer
// (RS384 or ES384, with Auth.KeyID as kid), as a launch's client
// authentication is; the issuer's endpoints are discovered as for a
// launch, through the engine's HTTP client and its rules. The issuer's
// ClientID is the client id. An issuer without a Signer or a KeyID gives
// CodeInvalidConfig: SMART's Backend Services authenticate with
// private_key_jwt only, and the EHR picks the key by its kid. An issuer
// not in Config.Issuers gives CodeUnknownIssuer, AllowAnyIssuer or not: a
// backend client is registered with each EHR it reads. A scope that is
// empty or holds anything but system/ scopes gives CodeInvalidRequest.
//
// Backend gets the token before it returns, so that a refusal shows at
// once: CodeDiscoveryFailed when the issuer's endpoints cannot be found,
// CodeTokenExchangeFailed when the token endpoint refuses (its
// *oauth2.RetrieveError, with the OAuth error code, is in the chain) or
// cannot be reached. For two seconds after a token request failed, calls
// that need a token get its error without asking again, so that a program
// looping over patients does not flood a failing token endpoint.
//
// The token is kept and shared: every call for the same issuer and scope
// (in any order) returns the same client, and its requests make no token
// request while the token is fresh. A token is asked for again when it is
// within Config.Leeway of its expiry (or half its lifetime, when that is
// shorter) and when the FHIR server answers 401 to it (then the request
// is sent once more with the new token; a second 401 is the FHIR
// server's answer, a *fhir.Error). Concurrent requests that find it
// expired make one token request. The token is also kept in
// Config.Storage, sealed with Config.StoreKeys as launch records are, and
// with Config.Locker instances that share the storage make one token
// request among them: an instance looks in the storage, under the lock,
// before it asks the EHR. A failing Storage or Locker, or a lock still
// held after RefreshLockTTL and a second of waiting, does not fail the
// client: it is logged, and the token asked for.
//
// The client adds the token, and the issuer's Header, only to requests to
// the issuer's FHIR origin, as a launch's client does: see
// [ReadyClient.FHIR] for that rule and for requests to other origins.
// Errors of its requests that concern the token are *fhir.Error wrapping
// an *Error (errors.Is(err, CodeTokenExchangeFailed) holds through it).
func (e *Engine) Backend(ctx context.Context, iss, scope string) (*fhir.Client, error) {
	const op = "backend"
	b, err := e.backend(op, iss, scope)
	if err != nil {
		return nil, err
	}
	if _, err := b.accessToken(ctx); err != nil {
		return nil, err
	}
	return b.client, nil
}

// backends holds the engine's Backend Services tokens, by issuer, client
// id and scope.
type backends struct {
	mu     sync.Mutex
	tokens map[string]*backendToken
}

// backend returns the token holder of an issuer and scope, made at the
// first call, after checking both.
func (e *Engine) backend(op, iss, scope string) (*backendToken, error) {
	if len(iss) > maxParamLen || len(scope) > maxParamLen {
		return nil, newError(op, CodeInvalidRequest, "the issuer or the scope is too long", nil)
	}
	is, err := e.issuer(op, iss)
	if err != nil {
		return nil, err
	}
	if _, ok := e.issuers[is.URL]; !ok {
		return nil, newError(op, CodeUnknownIssuer, "Backend Services use only the issuers of Config.Issuers, each with the client id it registered", untrustedText("iss", is.URL))
	}
	switch {
	case is.Auth.method != authPrivateKeyJWT:
		return nil, newError(op, CodeInvalidConfig, "the issuer's Auth has no Signer: SMART Backend Services authenticate with private_key_jwt only", untrustedText("iss", is.URL))
	case is.Auth.KeyID == "":
		return nil, newError(op, CodeInvalidConfig, "the issuer's Auth has no KeyID: SMART Backend Services name the signing key's kid in every assertion", untrustedText("iss", is.URL))
	}
	sc, err := systemScope(op, scope)
	if err != nil {
		return nil, err
	}
	key := is.URL + "\x00" + is.ClientID + "\x00" + sc
	e.backends.mu.Lock()
	defer e.backends.mu.Unlock()
	if b := e.backends.tokens[key]; b != nil {
		return b, nil
	}
	if e.backends.tokens == nil {
		e.backends.tokens = map[string]*backendToken{}
	}
	if len(e.backends.tokens) >= maxBackends {
		for k := range e.backends.tokens { // make room: any entry will do
			delete(e.backends.tokens, k)
			break
		}
	}
	sum := sha256.Sum256([]byte(key))
	b := &backendToken{engine: e, issuer: is, scope: sc, key: "backend:" + b64.EncodeToString(sum[:])}
	b.client = e.fhirClient(is, e.bases[is.URL], b, "")
	e.backends.tokens[key] = b
	return b, nil
}

// systemScope checks a Backend Services scope and returns it in one
// spelling: its scopes sorted, each once.
func systemScope(op, scope string) (string, error) {
	f := strings.Fields(scope)
	if len(f) == 0 {
		return "", newError(op, CodeInvalidRequest, "Backend Services need a scope of system/ scopes, such as system/Patient.rs", nil)
	}
	for _, s := range f {
		if !strings.HasPrefix(s, "system/") || len(s) == len("system/") {
			return "", newError(op, CodeInvalidRequest, "a Backend Services scope holds system/ scopes only, such as system/Patient.rs", untrustedText("scope", s))
		}
	}
	slices.Sort(f)
	return strings.Join(slices.Compact(f), " "), nil
}

// backendToken is the access token of one issuer, client and scope, and
// the FHIR client that carries it.
type backendToken struct {
	engine *Engine
	issuer *Issuer
	scope  string // sorted, each scope once
	key    string // the storage key of its backendRecord
	client *fhir.Client

	mu  sync.Mutex
	tok tokens // the token last got; zero before the first
	// failed is when the last token request failed, and failure its
	// error: calls within backendRetryAfter get it without asking again.
	failed  time.Time
	failure error

	flight singleflight.Group // one token request at a time in the process
}

// backendRecord is a Backend Services token as Config.Storage keeps it,
// for the app's other instances.
type backendRecord struct {
	V        int    `json:"v"`
	Issuer   string `json:"iss"`
	ClientID string `json:"cid"`
	Scope    string `json:"scope"`
	Tokens   tokens `json:"tok"`
}

func (r *backendRecord) version() int { return r.V }

// usable reports whether t is a fresh token other than stale.
func (b *backendToken) usable(t tokens, stale Secret) bool {
	e := b.engine
	return t.Access != "" && t.Access != stale && !t.stale(e.cfg.Now(), e.cfg.Leeway)
}

// accessToken returns a fresh access token, asking for one when the token
// is missing or about to expire.
func (b *backendToken) accessToken(ctx context.Context) (Secret, error) {
	b.mu.Lock()
	t := b.tok
	b.mu.Unlock()
	if b.usable(t, "") {
		return t.Access, nil
	}
	tok, _, err := b.refresh(ctx, "backend", "")
	return tok, err
}

// refusedRefreshed: the FHIR server's 401 to a token just got goes to
// the caller as the server's answer, a *fhir.Error.
func (b *backendToken) refusedRefreshed() error { return nil }

// refresh gets a new access token and returns it. stale is the token the
// caller found refused ("" when it merely expired): a fresh token other
// than it, got meanwhile by another request or instance, is used instead.
// renewed reports whether a token request made for this call (or one it
// joined) got the token. Concurrent calls share one token request.
func (b *backendToken) refresh(ctx context.Context, op string, stale Secret) (tok Secret, renewed bool, err error) {
	b.mu.Lock()
	failure := b.failure
	recent := failure != nil && b.engine.cfg.Now().Sub(b.failed) < backendRetryAfter
	b.mu.Unlock()
	if recent {
		return "", false, failure
	}
	for attempt := 1; ; attempt++ {
		ch := b.flight.DoChan("", func() (any, error) {
			// The request belongs to every waiting caller: the first one's
			// cancellation must not fail the others. fetch bounds its steps.
			return b.fetch(context.WithoutCancel(ctx), op, stale)
		})
		var r singleflight.Result
		select {
		case <-ctx.Done():
			return "", false, newError(op, CodeTokenExchangeFailed, "cancelled while waiting for a Backend Services token", ctx.Err())
		case r = <-ch:
		}
		if r.Err != nil {
			b.mu.Lock()
			b.failed, b.failure = b.engine.cfg.Now(), r.Err
			b.mu.Unlock()
			return "", false, r.Err
		}
		res := r.Val.(backendResult)
		if stale != "" && res.tok.Access == stale && !res.renewed && attempt < 3 {
			continue // joined a flight that found this very token fresh: go again
		}
		b.mu.Lock()
		if cur := b.tok; cur.Access == stale || !res.tok.Expiry.Before(cur.Expiry) {
			b.tok = res.tok // never put back an older token
		}
		b.failure = nil
		b.mu.Unlock()
		return res.tok.Access, res.renewed, nil
	}
}

// backendResult is the outcome of fetch: a fresh token, and whether a
// token request made it.
type backendResult struct {
	tok     tokens
	renewed bool
}

// fetch gets a fresh token other than stale: the one another flight of
// this process just got, the one another instance stored, or a new one
// from the token endpoint, under Config.Locker's lock when it is set.
func (b *backendToken) fetch(ctx context.Context, op string, stale Secret) (backendResult, error) {
	e := b.engine
	b.mu.Lock()
	cur := b.tok
	b.mu.Unlock()
	if b.usable(cur, stale) {
		return backendResult{tok: cur}, nil
	}
	if l := e.cfg.Locker; l != nil {
		wctx, cancel := context.WithTimeout(ctx, e.cfg.RefreshLockTTL+time.Second)
		unlock, err := acquireFor(wctx, op, CodeStorageUnavailable, "another instance's Backend Services token request", l, "lock:"+b.key, e.cfg.RefreshLockTTL)
		cancel()
		if err != nil {
			// The lock is an economy, not a need: without it (the Locker
			// failed, or the lock stayed held past its time), this
			// instance asks for a token of its own.
			e.log.LogAttrs(ctx, logWarn, "Backend Services: no lock of Config.Locker; asking for a token without it", slogIssuer(b.issuer), attrErr(err))
		} else {
			defer func() { _ = unlock(context.WithoutCancel(ctx)) }()
		}
	}
	// The request's time counts from here, whatever the wait used, and
	// ends before the lock runs out.
	base := ctx
	ctx, cancel := context.WithTimeout(base, e.cfg.RefreshLockTTL*8/10)
	defer cancel()

	if t, ok := b.load(ctx, op); ok && b.usable(t, stale) {
		return backendResult{tok: t}, nil // got meanwhile by another instance
	}
	as, err := e.server(ctx, op, b.issuer)
	if err != nil {
		return backendResult{}, err
	}
	tr, err := e.requestToken(ctx, op, CodeTokenExchangeFailed, b.issuer, as, url.Values{
		"grant_type": {"client_credentials"},
		"scope":      {b.scope},
	})
	if err != nil {
		return backendResult{}, err
	}
	now := e.cfg.Now()
	t := tokens{Access: Secret(tr.AccessToken), Expiry: tr.expiry(now), Issued: now}
	if t.Expiry.IsZero() {
		t.Expiry = now.Add(defaultBackendTokenLifetime)
	}
	b.store(base, op, t)
	e.log.LogAttrs(ctx, logDebug, "Backend Services token", slogIssuer(b.issuer))
	return backendResult{tok: t, renewed: true}, nil
}

// load returns the token stored for this issuer, client and scope, if any.
func (b *backendToken) load(ctx context.Context, op string) (tokens, bool) {
	e := b.engine
	var rec backendRecord
	err := e.getRecord(ctx, e.store, op, b.key, &rec)
	switch {
	case errors.Is(err, ErrNotFound):
		return tokens{}, false
	case err != nil:
		e.log.LogAttrs(ctx, logWarn, "Backend Services: Config.Storage failed; asking for a token", slogIssuer(b.issuer), attrErr(err))
		return tokens{}, false
	}
	if rec.Issuer != b.issuer.URL || rec.ClientID != b.issuer.ClientID || rec.Scope != b.scope {
		return tokens{}, false
	}
	return rec.Tokens, true
}

// store keeps t in Config.Storage until it expires, for the app's other
// instances. A failure is logged: this instance has its token.
func (b *backendToken) store(ctx context.Context, op string, t tokens) {
	e := b.engine
	ttl := t.Expiry.Sub(e.cfg.Now())
	if ttl <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(e.cfg.RefreshLockTTL/10, time.Second))
	defer cancel()
	rec := &backendRecord{V: recordVersion, Issuer: b.issuer.URL, ClientID: b.issuer.ClientID, Scope: b.scope, Tokens: t}
	if err := e.putRecord(ctx, e.store, op, b.key, rec, ttl); err != nil {
		e.log.LogAttrs(ctx, logWarn, "Backend Services: storing the token in Config.Storage failed", slogIssuer(b.issuer), attrErr(err))
	}
}
