package core

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// revocationTimeout bounds the revocation of a browser's launches at
// logout, retries included: a slow or hung revocation endpoint delays a
// logout by at most this much.
const revocationTimeout = 5 * time.Second

// revokeLaunches asks the EHRs to revoke the tokens of the session's
// launches (RFC 7009), all launches at once, within revocationTimeout. It
// never fails: a launch that cannot be loaded, whose issuer is no longer
// accepted or whose EHR has no revocation endpoint is skipped, and a
// failed revocation is logged.
func (s *session) revokeLaunches(ctx context.Context, handles []string) {
	ctx, cancel := context.WithTimeout(ctx, revocationTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, h := range handles {
		wg.Go(func() { s.revokeLaunch(ctx, h) })
	}
	wg.Wait()
}

// revokeLaunch revokes one launch's refresh token, then its access token.
func (s *session) revokeLaunch(ctx context.Context, handle string) {
	const op = "logout"
	e := s.engine
	rec, err := e.loadLaunch(ctx, s.store, op, s.id, handle)
	if err != nil {
		return // gone already, or unreadable: nothing to revoke
	}
	is, err := e.issuer(op, rec.Context.Issuer)
	if err != nil {
		return // no longer accepted: its server gets nothing, not even the client's credentials
	}
	as, err := e.server(ctx, op, is)
	if err != nil {
		e.log.LogAttrs(ctx, logWarn, "the tokens of a launch were not revoked at logout: its issuer's configuration could not be fetched", slogIssuer(is), attrErr(err))
		return
	}
	if as.disc.RevocationEndpoint == "" {
		return
	}
	if rec.Tokens.Refresh != "" {
		e.revoke(ctx, is, as, rec.Tokens.Refresh, "refresh_token")
	}
	e.revoke(ctx, is, as, rec.Tokens.Access, "access_token")
}

// revoke POSTs one token to the issuer's revocation endpoint with the
// issuer's client authentication (see postForm). A 200 answer is a
// revocation, of a token the EHR knew or not (RFC 7009 section 2.2);
// anything else is logged with the issuer and the status (or the network
// error), never the token.
func (e *Engine) revoke(ctx context.Context, is *Issuer, as *authServer, tok Secret, hint string) {
	resp, err := e.postForm(ctx, is, as, as.disc.RevocationEndpoint, url.Values{"token": {string(tok)}, "token_type_hint": {hint}})
	attrs := []slog.Attr{slogIssuer(is), slog.String("token_type_hint", hint)}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the request's URL is the endpoint's; its body, with the token, is in no error
		}
		e.log.LogAttrs(ctx, logWarn, "revoking a token at logout failed; the logout goes on", append(attrs, attrErr(err))...)
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.log.LogAttrs(ctx, logWarn, "revoking a token at logout failed; the logout goes on", append(attrs, attrStatus(resp.StatusCode))...)
		return
	}
	e.log.LogAttrs(ctx, logDebug, "revoked a token at logout", attrs...)
}
