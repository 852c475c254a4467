package core

import (
	"context"
	"errors"
	"net/url"
	"time"

	"golang.org/x/sync/singleflight"
)

// accessToken returns a fresh access token, refreshing first if it expires
// within the leeway.
func (rc *ReadyClient) accessToken(ctx context.Context) (Secret, error) {
	rc.mu.Lock()
	tok, expired := rc.rec.Tokens.Access, rc.expiredLocked()
	rc.mu.Unlock()
	if !expired {
		return tok, nil
	}
	tok, _, err := rc.refresh(ctx, "refresh", "")
	return tok, err
}

// refresh gets the launch a new access token and returns it. stale is the
// access token the caller found refused ("" when it merely expired): if the
// stored launch already holds another, fresh token (refreshed by another
// request or instance), that one is used and no refresh is made. refreshed
// reports whether the token comes from a refresh made for this call (or
// one it joined), rather than from the storage.
//
// Within a process, concurrent refreshes of one launch are one refresh
// (single-flight). With Config.Locker, its lock makes it one
// refresh across processes too.
func (rc *ReadyClient) refresh(ctx context.Context, op string, stale Secret) (tok Secret, refreshed bool, err error) {
	s := rc.session
	e := s.engine
	for attempt := 1; ; attempt++ {
		// Keyed by session and handle: a flight of another session is never joined.
		ch := e.refreshing.DoChan(s.id+":"+rc.handle, func() (any, error) {
			// The refresh belongs to every waiting request: the first one's
			// cancellation must not lose a rotated refresh token.
			// refreshLaunch bounds each of its steps.
			return s.refreshLaunch(context.WithoutCancel(ctx), rc.handle, stale)
		})
		var r singleflight.Result
		select {
		case <-ctx.Done():
			return "", false, newError(op, CodeRefreshFailed, "cancelled while waiting for a token refresh", ctx.Err())
		case r = <-ch:
		}
		if r.Err != nil {
			return "", false, r.Err
		}
		res := r.Val.(refreshResult)
		if stale != "" && res.rec.Tokens.Access == stale && !res.refreshed && attempt < 3 {
			// This call joined a flight started by another caller, which
			// found the stored token fresh: the very token this caller saw
			// refused. Go again, as a flight of its own.
			continue
		}
		rc.mu.Lock()
		// Keep the newest record: a slow waiter of an earlier flight must
		// not put back an older token.
		if cur := rc.rec.Tokens; cur.Access == stale || !res.rec.Tokens.Expiry.Before(cur.Expiry) {
			rc.rec = *res.rec
		}
		rc.mu.Unlock()
		return res.rec.Tokens.Access, res.refreshed, nil
	}
}

// refreshResult is the outcome of refreshLaunch: the launch's record with
// a fresh token, and whether a refresh made that token (false when the
// stored one was fresh already).
type refreshResult struct {
	rec       *launchRecord
	refreshed bool
}

// refreshLaunch does one refresh of a stored launch, under Config.Locker's
// lock when it is set.
func (s *session) refreshLaunch(ctx context.Context, handle string, stale Secret) (res refreshResult, err error) {
	const op = "refresh"
	e := s.engine
	key := launchKey(handle)
	rt := e.tel.refreshTrace()
	defer func() { rt.end(ctx, res.refreshed, err) }()
	if l := e.cfg.Locker; l != nil {
		// Wait for another holder at most as long as its lock can last,
		// and a last look after it ran out (a holder that died).
		waited := time.Now()
		wctx, cancel := context.WithTimeout(ctx, e.cfg.RefreshLockTTL+time.Second)
		unlock, err := acquireFor(wctx, op, CodeStorageUnavailable, "another instance's token refresh", l, refreshLockKey(s.id, handle), e.cfg.RefreshLockTTL)
		cancel()
		if err != nil {
			return refreshResult{}, err
		}
		defer rt.locked(ctx, waited)()
		defer func() { _ = unlock(context.WithoutCancel(ctx)) }()
	}
	// The refresh's time counts from here, whatever the wait used: it
	// ends before the lock runs out, leaving a tenth of RefreshLockTTL to
	// store the new tokens.
	base := ctx
	ctx, cancel := context.WithTimeout(base, e.cfg.RefreshLockTTL*8/10)
	defer cancel()

	rec, err := e.loadLaunch(ctx, s.store, op, s.id, handle)
	switch {
	case errors.Is(err, ErrNotFound):
		return refreshResult{}, newError(op, CodeLaunchExpired, "the launch has ended", nil)
	case err != nil:
		return refreshResult{}, err
	}
	now := e.cfg.Now()
	fresh := !rec.Tokens.stale(now, e.cfg.Leeway)
	rt.issuer, rt.metric = issuerHost(rec.Context.Issuer), e.tel.metricIssuer(rec.Context.Issuer)
	if fresh && rec.Tokens.Access != stale {
		return refreshResult{rec: &rec}, nil // refreshed meanwhile by someone else
	}
	ctx = rt.begin(ctx)
	if rec.Tokens.Refresh == "" {
		return refreshResult{}, newError(op, CodeLaunchExpired, "the access token expired and the launch has no refresh token (ask for offline_access or online_access)", nil)
	}
	is, err := e.issuer(op, rec.Context.Issuer)
	if err != nil {
		return refreshResult{}, err
	}
	as, err := e.server(ctx, op, is)
	if err != nil {
		return refreshResult{}, err // discovery_failed: the launch stays, a later request may refresh
	}
	refused := rec.Tokens.Refresh
	tr, err := e.requestToken(ctx, op, CodeRefreshFailed, is, as, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {string(refused)},
	})
	if err != nil {
		var fe *Error
		if !errors.As(err, &fe) {
			return refreshResult{}, err
		}
		if fe.status >= 400 && fe.status < 500 {
			// The grant is gone: end the launch rather than retry forever.
			s.endLaunch(base, handle, refused)
			return refreshResult{}, err
		}
		// Unreachable or failing token endpoint: the launch stays, and a
		// later request may refresh it.
		fe.Code = CodeTokenExchangeFailed
		return refreshResult{}, fe
	}
	if tr.IDToken != "" && (as.verifier != nil || hasScope(rec.Requested, "openid")) { // else unasked and unverifiable: left unread, as at the callback
		claims, err := e.verifyIDToken(ctx, op, as, tr.IDToken, "")
		if err != nil {
			s.endLaunch(base, handle, refused)
			return refreshResult{}, &Error{Op: op, Code: CodeRefreshFailed, Description: "the refreshed id_token failed verification", Err: err}
		}
		if (rec.Context.Subject != "" && claims.Subject != rec.Context.Subject) ||
			(rec.Context.AuthIssuer != "" && claims.Issuer != rec.Context.AuthIssuer) {
			s.endLaunch(base, handle, refused)
			return refreshResult{}, newError(op, CodeRefreshFailed, "the refreshed id_token names another user or issuer", nil)
		}
	}
	rec.Tokens.Access = Secret(tr.AccessToken)
	if tr.RefreshToken != "" {
		rec.Tokens.Refresh = Secret(tr.RefreshToken)
	}
	rec.Tokens.Expiry, rec.Tokens.Issued = tr.expiry(now), now
	rec.Context.Expiry = rec.Tokens.Expiry
	if tr.Scope != "" {
		rec.Context.Scope = tr.Scope
	}
	// Store before use: a rotated refresh token must never be lost, even
	// when the token response came at the end of the refresh's time.
	ttl := max(rec.Created.Add(e.cfg.LaunchTTL).Sub(now), time.Minute)
	pctx, pcancel := context.WithTimeout(base, e.cfg.RefreshLockTTL/10)
	defer pcancel()
	if err := e.putRecord(pctx, s.store, op, key, &rec, ttl); err != nil {
		return refreshResult{}, err
	}
	e.log.LogAttrs(ctx, logDebug, "refreshed", slogIssuer(is))
	return refreshResult{rec: &rec, refreshed: true}, nil
}

// acquireFor takes a Locker's lock, waiting for another holder to release
// it or for its time to run out; a wait cut short by ctx fails with code.
func acquireFor(ctx context.Context, op string, code Code, what string, l Locker, key string, ttl time.Duration) (func(context.Context) error, error) {
	wait := 10 * time.Millisecond
	for {
		unlock, ok, err := l.TryLock(ctx, key, ttl)
		if err != nil {
			return nil, storageError(op, err)
		}
		if ok {
			return unlock, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, newError(op, code, "timed out waiting for "+what, ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, 200*time.Millisecond)
	}
}

// endLaunch deletes a launch whose grant the EHR refused, and its handle
// from the session's list, unless the stored launch meanwhile holds another
// refresh token (rotated by another instance that had no shared lock): that
// launch is alive.
func (s *session) endLaunch(ctx context.Context, handle string, refused Secret) {
	const op = "refresh"
	key := launchKey(handle)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	rec, err := s.engine.loadLaunch(ctx, s.store, op, s.id, handle)
	if err != nil || rec.Tokens.Refresh != refused {
		return
	}
	_ = deleteRecord(ctx, s.store, op, key)
	_ = s.removeFromIndex(ctx, op, handle)
}
