package adapters

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/sessions"
)

// Launch returns the launch handler, for GET /launch:
//
//   - /launch?iss=…&launch=… is an EHR launch;
//   - /launch?iss=… (no launch) is a standalone launch at the issuer the app
//     names, unless Config.EHRLaunchOnly refuses it with 400;
//   - a request without iss is refused with 400 invalid_request.
//
// On success it answers 302 to the issuer's authorize endpoint, with every
// SMART parameter; errors go to the error page with their status (403 for
// an issuer the app does not accept, 502 when the EHR cannot be reached,
// 503 when the session store fails).
func (a *App) Launch() http.Handler { return a.launch }

// Callback returns the callback handler, for GET /callback: the EHR's
// answer (?code=…&state=…[&iss=…], or ?error=…&error_description=…&state=…)
// is checked and exchanged, the browser session gets a new token (against
// session fixation), and the browser is sent, with 302, to Config.RedirectURL
// carrying the new launch handle. A refusal by the EHR (error=access_denied)
// answers 403; an unknown or used state 400; no browser session 401.
//
// Tabs of one browser whose callbacks arrive together all finish: a
// callback that still carries the cookie another tab's callback renewed
// less than sessions.ForwardTTL (30 seconds) ago finishes through the old
// token's forward, for a pending launch of that session finished by the
// same EHR user, and gets a new cookie; see sessions.Browser.Forwarded.
func (a *App) Callback() http.Handler { return a.callback }

// Logout returns the logout handler, for POST /logout only: it ends every
// launch of the browser with [core.Engine.Logout], which first revokes the
// launches' tokens at EHRs that advertise a revocation_endpoint (a failed
// revocation is logged and does not stop the logout), then deletes the
// launches with their tokens; and it answers 204 No Content,
// or, when Config.LogoutURL is set and the request does not ask for JSON,
// 303 See Other to it. The browser session itself stays. A request from
// another origin than the app's (its Sec-Fetch-Site is neither
// same-origin nor none, or, without one, its Origin is not the origin of
// Config.CallbackURL) is refused with 400.
func (a *App) Logout() http.Handler { return a.logout }

func (a *App) serveLaunch(w http.ResponseWriter, r *http.Request) {
	const op = "launch"
	q := r.URL.Query()
	iss, launch := q.Get("iss"), q.Get("launch")
	switch {
	case iss == "":
		a.Error(w, r, &core.Error{Op: op, Code: core.CodeInvalidRequest,
			Description: "the launch request has no iss parameter"})
		return
	case launch == "" && a.ehrLaunchOnly:
		a.Error(w, r, &core.Error{Op: op, Code: core.CodeInvalidRequest,
			Description: "the launch request has no launch parameter; this app must be launched from the EHR"})
		return
	}
	ctx := r.Context()
	// A browser without a SMART session gets a fresh id that is put in its
	// session only once the launch succeeded: a failed launch saves no
	// session and sets no cookie.
	id, _, err := a.browser.LaunchID(ctx)
	if err != nil {
		a.Error(w, r, err)
		return
	}
	authorize, err := a.engine.Launch(ctx, id, iss, launch)
	if err != nil {
		a.Error(w, r, err)
		return
	}
	// A session made by this launch lives as long as its pending launch;
	// the callback gives it the manager's whole Lifetime (Browser.Renew).
	a.browser.Launched(ctx, id, a.pendingTTL)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authorize, http.StatusFound)
}

func (a *App) serveCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ctx := r.Context()
	id, ok := a.browser.ID(ctx) // none: the engine answers no_launch
	// A tab whose callback left with the cookie another tab's callback has
	// just renewed: the old token's forward may finish this callback only
	// (sessions.Browser.Forwarded).
	var (
		fwd       sessions.Forward
		forwarded bool
	)
	if !ok {
		var err error
		if fwd, forwarded, err = a.browser.Forwarded(ctx, r); err != nil {
			a.Error(w, r, err)
			return
		}
		if forwarded {
			id = fwd.Session()
		}
	}
	rc, err := a.engine.Callback(ctx, id, core.CallbackRequest{
		Query: q,
		// Before the launch is stored: a token planted in the browser
		// never sees it, not even for a moment.
		BeforeStore: func(ctx context.Context, lc core.LaunchContext) error {
			user := sessions.LaunchUser(lc)
			if forwarded {
				if !fwd.SameUser(user) {
					a.log.LogAttrs(ctx, slog.LevelWarn, "adapters: a callback through a renewed session token was authorized by another EHR user; refused")
					return errors.New("the callback through a renewed session token was authorized by another EHR user")
				}
				return nil
			}
			// A new token, and the manager's whole Lifetime.
			return a.browser.RenewAfterCallback(ctx, user)
		},
	})
	if forwarded {
		err = a.finishForwarded(ctx, fwd, err)
	}
	if err != nil {
		a.Error(w, r, err)
		return
	}
	a.browser.SetLatestHandle(ctx, rc.Handle())
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer") // the callback URL holds the code
	http.Redirect(w, r, withHandle(a.redirect.String(), rc.Handle()), http.StatusFound)
}

// finishForwarded ends a callback run through an old token's forward, with
// the engine's answer: a success (the same user who renewed the token
// authorized the launch, checked before it was stored) gives the browser a
// new cookie for the session. Anything else is answered as a request
// without a session, 401 no_launch, so the old token reveals nothing; a
// launch authorized by another user (someone who planted the old token,
// with a pending launch of their own in the session) was never stored.
func (a *App) finishForwarded(ctx context.Context, fwd sessions.Forward, err error) error {
	const op = "callback"
	noSession := func(cause error) error {
		return &core.Error{Op: op, Code: core.CodeNoLaunch,
			Description: "the request has no browser session", Err: cause}
	}
	switch {
	case errors.Is(err, core.CodeStorageUnavailable):
		return err
	case err != nil:
		return noSession(err)
	}
	a.browser.Adopt(ctx, fwd)
	return nil
}

func (a *App) serveLogout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !a.fromApp(r) {
		// Another site's form or script: with a SameSite=None cookie (an
		// app embedded in the EHR) it would carry the session.
		a.Error(w, r, &core.Error{Op: "logout", Code: core.CodeInvalidRequest,
			Description: "a logout from another site is refused"})
		return
	}
	if id, ok := a.browser.ID(ctx); ok {
		if err := a.engine.Logout(ctx, id); err != nil {
			a.Error(w, r, err)
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	if a.logoutURL != "" && !wantsJSON(r) {
		http.Redirect(w, r, a.logoutURL, http.StatusSeeOther)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fromApp reports whether a state-changing request comes from the app's own
// pages: the browser says so (Sec-Fetch-Site same-origin, or none for one
// the user typed), or, from a browser that does not send Sec-Fetch-Site,
// its Origin is absent or the app's own.
func (a *App) fromApp(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
		o := r.Header.Get("Origin")
		return o == "" || o == a.origin
	}
	return false
}
