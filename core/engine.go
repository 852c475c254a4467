package core

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Engine is the long-lived, concurrency-safe SMART client of an app. Build
// one with [New] when the app starts and share it: it holds the HTTP client,
// the per-issuer discovery cache and the id_token key sets. Call its
// Launch, Callback, Ready and Logout with the browser's id, and Backend
// for SMART Backend Services, which need none.
type Engine struct {
	cfg     Config
	client  *http.Client // discovery, JWKS, token
	fhir    *http.Client // FHIR requests of ReadyClients
	outside *http.Client // their requests outside the FHIR origin (newOutsideClient)
	log     *slog.Logger
	issuers map[string]*Issuer
	bases   map[string]*url.URL // the configured issuers' URLs, parsed; read-only
	owned   map[string]bool     // origins of configured issuers and servers; read-only

	callbackKeys []string // query parameters that tell redirect URIs apart; read-only
	pendingMu    [indexStripes]sync.Mutex

	mu      sync.RWMutex
	servers map[string]*authServer // by FHIR base URL
	flight  singleflight.Group

	refreshing singleflight.Group // by launch key: one refresh per launch per process
	decoded    *decodeCache       // launch records as last decoded
	ring       *keyRing           // Config.StoreKeys; nil: records are stored unsealed
	indexMu    [indexStripes]sync.Mutex

	backends backends // Backend Services tokens (backend.go)

	tel   *telemetry // Config.TracerProvider and MeterProvider's tracer and instruments
	store Storage    // Config.Storage, timed and traced (instrumentStorage)
}

// decodeCacheSize bounds the launch records kept decoded: a few KiB each,
// at most maxRecordBytes.
const decodeCacheSize = 8192

// maxCachedIssuers bounds the discovery cache, which AllowAnyIssuer would
// otherwise let grow with every issuer a launch names.
const maxCachedIssuers = 1024

// indexStripes is the number of mutexes that serialise changes to the
// sessions' launch indexes within the process.
const indexStripes = 64

// New validates cfg, fills its defaults and returns an Engine. An invalid
// Config gives an *Error with CodeInvalidConfig whose message names the
// field.
func New(cfg Config) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	client, fhir, err := newClients(&cfg)
	if err != nil {
		return nil, err
	}
	ring, err := newKeyRing(cfg.StoreKeys)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:     cfg,
		client:  client,
		fhir:    fhir,
		outside: newOutsideClient(&cfg, fhir),
		log:     cfg.Logger,
		issuers: make(map[string]*Issuer, len(cfg.Issuers)),
		bases:   make(map[string]*url.URL, len(cfg.Issuers)),
		servers: map[string]*authServer{},
		decoded: newDecodeCache(decodeCacheSize),
		ring:    ring,
		owned:   ownedOrigins(&cfg),

		callbackKeys: callbackKeys(&cfg),
		tel:          newTelemetry(cfg.TracerProvider, cfg.MeterProvider),
	}
	if apiGlobal(cfg.TracerProvider) { // by default, from Engine.Config, or set by hand
		e.tel.global = cfg.TracerProvider // see startHot
	}
	e.store = instrumentStorage(cfg.Storage, e.tel)
	for i := range e.cfg.Issuers {
		is := &e.cfg.Issuers[i]
		e.issuers[is.URL] = is
		e.bases[is.URL], _ = url.Parse(is.URL) // checked by withDefaults
	}
	e.tel.nameIssuers(e.cfg.Issuers)
	return e, nil
}

// Config returns a copy of the engine's configuration, with its defaults
// filled in. Changing it changes nothing in the engine. The values it
// shares with the engine (Storage, Locker, Logger, TracerProvider,
// MeterProvider, the Signers) are the ones the engine uses, meant to be
// shared: an engine built from the copy writes to the same store and the
// same telemetry.
func (e *Engine) Config() Config {
	c := e.cfg
	c.Issuers = slices.Clone(c.Issuers)
	for i := range c.Issuers {
		c.Issuers[i].Header = c.Issuers[i].Header.Clone()
	}
	c.DefaultIssuer.Header = c.DefaultIssuer.Header.Clone()
	c.StoreKeys = slices.Clone(c.StoreKeys)
	return c
}

// session is the engine bound to one browser: the browser's opaque,
// unguessable id, under which its records are kept.
type session struct {
	engine *Engine
	id     string
	store  Storage
}

func (e *Engine) session(browser string) *session {
	return &session{engine: e, id: browser, store: e.store}
}

// Launch starts a launch for the browser whose id is browser (an opaque,
// unguessable identifier of the browser's session, such as the one
// sessions.Browser keeps in a cookie): it discovers the issuer's endpoints
// (cached), stores a pending launch keyed by a fresh state with a PKCE
// verifier and a nonce, and returns the EHR's authorize URL to redirect the
// browser to. iss is the FHIR base URL (the EHR launch's iss parameter, or
// the issuer the app chose for a standalone launch) and launch the EHR's
// opaque launch parameter, empty for a standalone launch.
//
// Each call makes its own pending launch, so overlapping launches in one
// browser (several tabs) never overwrite each other. A refused issuer fails
// before anything is stored or fetched.
//
// A launch whose scope has openid from an EHR that names no issuer and key
// set for its id_tokens (neither in a smart-configuration nor in its
// authorization server's OpenID configuration, see [Engine.Discover])
// fails with CodeDiscoveryFailed before anything is stored and before the
// browser goes to the EHR: its id_token could not be verified at the
// callback. The Description says what the EHR lacks and what the app can
// do.
func (e *Engine) Launch(ctx context.Context, browser, iss, launch string) (string, error) {
	ctx, op := e.tel.begin(ctx, spanLaunch)
	op.span.SetAttributes(launchType(launch))
	authorize, err := e.session(browser).launch(ctx, iss, launch)
	e.tel.end(ctx, op, e.tel.launches, err)
	return authorize, err
}

// Callback finishes a launch of the browser and returns its client; see
// [CallbackRequest] for what the callback brings. The state must name a
// pending launch of this browser that has not expired; it is deleted
// before anything else is done, so it cannot be replayed. The code is
// exchanged with the issuer's client authentication and PKCE verifier, the
// id_token (when there is one) is verified, and the launch is stored under
// a new handle ([ReadyClient.Handle]).
//
// When the EHR granted openid, an id_token is required: a token response
// without one fails with CodeInvalidIDToken. What was granted is the token
// response's scope or, when the response names none, the scope the launch
// asked for (RFC 6749 section 5.1), so a Config.Scope with openid, such as
// the default, requires an id_token unless the EHR says it withheld openid.
// The id_token may be valid for at most 24 hours.
//
// An EHR's refusal (error) gives CodeAuthorizationDenied. Its Description
// names the OAuth error code only when it is a registered one (such as
// access_denied); the EHR's other words (error, error_description) stay in
// the error's cause, for logs, and are never shown.
//
// Against session fixation, the app renews the browser's session
// identifier in req.BeforeStore, before the launch is stored (the adapters
// do), so that no identifier planted in the browser ever names a session
// that holds the launch.
func (e *Engine) Callback(ctx context.Context, browser string, req CallbackRequest) (*ReadyClient, error) {
	ctx, op := e.tel.begin(ctx, spanCallback)
	rc, err := e.session(browser).callback(ctx, req)
	e.tel.end(ctx, op, e.tel.callbacks, err)
	return rc, err
}

// Ready returns the client for one of the browser's launches: the one named
// by handle, or the most recent when handle is empty. It makes no network
// call while the access token is fresh; an expired token is refreshed once
// with the launch's refresh token (one refresh per launch, across instances
// with Config.Locker), as a FHIR request's 401 does.
//
// A handle names a launch only within its own browser: another browser's
// handle gives CodeNoLaunch.
func (e *Engine) Ready(ctx context.Context, browser, handle string) (*ReadyClient, error) {
	ctx, span := e.tel.startHot(ctx, spanReady)
	rc, err := e.session(browser).ready(ctx, handle)
	endSpan(span, err)
	return rc, err
}

// Logout ends every launch of the browser and every launch it has started
// and not finished.
//
// When a launch's EHR advertises a revocation_endpoint (it must be on the
// issuer's origin, as its other endpoints), Logout first asks it to revoke
// the launch's refresh token and then its access token (RFC 7009), with
// the issuer's client authentication, through the engine's HTTP client and
// its retries. A launch whose issuer the engine no longer accepts is not
// revoked. The revocations of all the browser's launches run at once and
// take at most 5 seconds together; one that fails (unreachable, slow, an
// answer other than 200) is logged at Warn with the issuer and the status,
// never the token, and does not stop the logout.
//
// Then the launches are deleted from the storage, with their tokens. An
// error is a storage failure; a revocation never makes one.
func (e *Engine) Logout(ctx context.Context, browser string) error {
	ctx, span := e.tel.tracer.Start(ctx, spanLogout)
	err := e.session(browser).logout(ctx)
	endSpan(span, err)
	return err
}

// launchIssuer returns the settings and parsed URL of a stored launch's
// issuer: from the configuration at the cost of a map lookup, or (with
// AllowAnyIssuer) checked and parsed again.
func (e *Engine) launchIssuer(op, iss string) (*Issuer, *url.URL, error) {
	if is, ok := e.issuers[iss]; ok {
		return is, e.bases[iss], nil
	}
	is, err := e.issuer(op, iss)
	if err != nil {
		return nil, nil, err
	}
	base, err := url.Parse(is.URL)
	if err != nil {
		return nil, nil, newError(op, CodeNoLaunch, "the launch's issuer URL is malformed", err)
	}
	return is, base, nil
}

// issuer returns the settings for a launch's iss, or an error saying why the
// issuer is refused.
func (e *Engine) issuer(op, iss string) (*Issuer, error) {
	if iss == "" {
		return nil, newError(op, CodeInvalidRequest, "the issuer (iss) is missing", nil)
	}
	u, err := url.Parse(iss)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Fragment != "" || u.RawQuery != "" {
		return nil, newError(op, CodeInvalidRequest, "the issuer (iss) is not an absolute URL without query or fragment", nil)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !e.cfg.AllowInsecureHTTP {
			return nil, newError(op, CodeUnknownIssuer, "the issuer uses http; only https issuers are accepted unless AllowInsecureHTTP is set", nil)
		}
	default:
		return nil, newError(op, CodeUnknownIssuer, "the issuer's scheme must be https", nil)
	}
	key := strings.TrimRight(iss, "/")
	if is, ok := e.issuers[key]; ok {
		return is, nil
	}
	if !e.cfg.AllowAnyIssuer {
		// The iss is the request's text: logs get it (in the cause), pages
		// never do.
		return nil, newError(op, CodeUnknownIssuer, "the issuer is not one of the configured issuers", untrustedText("iss", key))
	}
	if e.owned[origin(u)] {
		// Only a configured issuer may live on a configured issuer's
		// origin: anything else there could claim its identity.
		return nil, newError(op, CodeUnknownIssuer, "the issuer is on the origin of a configured issuer but is not one of them", nil)
	}
	is := e.cfg.DefaultIssuer
	is.URL = key
	return &is, nil
}

// authServer is what the engine caches per issuer: its discovered endpoints
// and the id_token verifier built on its JWKS.
type authServer struct {
	disc    *Discovery
	expires time.Time // when it is fetched again
	// staleUntil is how long it may still be used when fetching it again
	// fails or comes back degraded (see server).
	staleUntil time.Time
	verifier   idTokenVerifier
	gap        *idTokenGap // why verifier is nil while the app asks for openid; nil otherwise
}

// server returns the issuer's discovered configuration, fetching it when
// the cache has none or it has expired. Concurrent callers
// for one issuer share one fetch.
//
// When fetching it again fails, or comes back degraded (read from the
// CapabilityStatement after the smart-configuration failed for a reason
// that may pass), the configuration already cached is used a minute
// longer and then asked again, for at most an hour past its expiry: a
// blip at the EHR as the hour turns must not fail every launch, callback
// and refresh, nor swap a configuration that verifies id_tokens for one
// that does not. What is used was fetched and checked before.
func (e *Engine) server(ctx context.Context, op string, is *Issuer) (*authServer, error) {
	now := e.cfg.Now()
	e.mu.RLock()
	as := e.servers[is.URL]
	e.mu.RUnlock()
	if as != nil && now.Before(as.expires) {
		return as, nil
	}
	ch := e.flight.DoChan(is.URL, func() (any, error) {
		// Read again: a fetch that ended since may have stored a fresh one.
		e.mu.RLock()
		as := e.servers[is.URL]
		e.mu.RUnlock()
		if as != nil && e.cfg.Now().Before(as.expires) {
			return as, nil
		}
		// The fetch belongs to every waiting caller: do not let the first
		// caller's cancellation fail the others.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultHTTPTimeout)
		defer cancel()
		fctx, span := e.tel.start(fctx, spanDiscovery, attrIssuer.String(issuerHost(is.URL)))
		d, ttl, err := e.discover(fctx, is)
		if err == nil {
			err = e.bind(is, d)
		}
		var gap *idTokenGap
		if err == nil {
			gap, err = e.lookUpOpenID(fctx, is, d)
		}
		endSpan(span, discoveryError(err))
		now := e.cfg.Now()
		if (err != nil || ttl < discoveryTTL) && as != nil && now.Before(as.staleUntil) {
			why := errors.New("the smart-configuration failed, and only the CapabilityStatement answered")
			if err != nil {
				why = err
			}
			e.log.LogAttrs(fctx, logWarn, "the issuer's configuration could not be fetched again; the cached one is used a minute longer",
				slogIssuer(is), attrErr(why))
			stale := *as
			stale.expires = now.Add(fallbackRetryTTL)
			e.mu.Lock()
			if e.servers[is.URL] == as { // not evicted meanwhile (see maxCachedIssuers), nor replaced
				e.servers[is.URL] = &stale
			}
			e.mu.Unlock()
			return &stale, nil
		}
		if err != nil {
			return nil, err
		}
		expires := now.Add(ttl)
		next := &authServer{disc: d, expires: expires, staleUntil: expires.Add(discoveryTTL), gap: gap}
		if as != nil && as.disc.JWKSURI == d.JWKSURI && as.disc.Issuer == d.Issuer {
			next.verifier = as.verifier // keep the cached keys
		} else {
			next.verifier = e.newVerifier(is, d)
		}
		e.mu.Lock()
		if _, ok := e.servers[is.URL]; !ok && len(e.servers) >= maxCachedIssuers {
			for k := range e.servers { // make room: any entry will do
				delete(e.servers, k)
				break
			}
		}
		e.servers[is.URL] = next
		e.mu.Unlock()
		return next, nil
	})
	select {
	case <-ctx.Done():
		return nil, newError(op, CodeDiscoveryFailed, "cancelled while discovering the issuer's endpoints", ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return nil, newError(op, CodeDiscoveryFailed, "could not discover the issuer's SMART configuration", r.Err)
		}
		return r.Val.(*authServer), nil
	}
}

func quoteShort(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return "\"" + s + "\""
}
