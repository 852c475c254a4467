package adapters

import (
	"net/http"

	"github.com/fhirware/smart/core"
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
func (s *Smart) Launch() http.Handler { return s.launch }

// Callback returns the callback handler, for GET /callback: the EHR's
// answer (?code=…&state=…[&iss=…], or ?error=…&error_description=…&state=…)
// is checked and exchanged, the browser session gets a new token (against
// session fixation), and the browser is sent, with 302, to Config.RedirectURL
// carrying the new launch handle. A refusal by the EHR (error=access_denied)
// answers 403; an unknown or used state 400; no browser session 401.
func (s *Smart) Callback() http.Handler { return s.callback }

// Logout returns the logout handler, meant for POST /logout: it deletes
// every launch of the browser session, with its tokens, and answers 204 No
// Content. The browser session itself stays.
func (s *Smart) Logout() http.Handler { return s.logout }

func (s *Smart) serveLaunch(w http.ResponseWriter, r *http.Request) {
	const op = "launch"
	q := r.URL.Query()
	req := core.LaunchRequest{Issuer: q.Get("iss"), Launch: q.Get("launch")}
	switch {
	case req.Issuer == "":
		s.Error(w, r, &core.Error{Op: op, Code: core.CodeInvalidRequest,
			Description: "the launch request has no iss parameter; launch the app from the EHR"})
		return
	case req.Launch == "" && s.ehrLaunchOnly:
		s.Error(w, r, &core.Error{Op: op, Code: core.CodeInvalidRequest,
			Description: "the launch request has no launch parameter; this app must be launched from the EHR"})
		return
	}
	if err := s.engine.CheckIssuer(req.Issuer); err != nil {
		s.Error(w, r, err) // before the session: a refused launch sets no cookie
		return
	}
	ctx := r.Context()
	// A browser without a SMART session gets a fresh id that is put in its
	// session only once the launch succeeded: a failed launch saves no
	// session and sets no cookie.
	id, _, err := s.browser.LaunchID(ctx)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	authorize, err := s.engine.Session(id, s.storage).Launch(ctx, req)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	// A session made by this launch lives as long as its pending launch;
	// the callback gives it the manager's whole Lifetime (Browser.Renew).
	s.browser.Launched(ctx, id, s.engine.Config().PendingLaunchTTL)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authorize, http.StatusFound)
}

func (s *Smart) serveCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ctx := r.Context()
	id, _ := s.browser.Existing(ctx) // none: the engine answers no_session
	res, err := s.engine.Session(id, s.storage).Callback(ctx, core.CallbackRequest{
		Code:             q.Get("code"),
		State:            q.Get("state"),
		Issuer:           q.Get("iss"),
		Error:            q.Get("error"),
		ErrorDescription: q.Get("error_description"),
		Query:            q,
	})
	if err == nil {
		err = s.browser.Renew(ctx) // a new token, and the manager's whole Lifetime
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer") // the callback URL holds the code
	http.Redirect(w, r, res.RedirectURL, http.StatusFound)
}

func (s *Smart) serveLogout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if id, ok := s.browser.Existing(ctx); ok {
		if err := s.engine.Session(id, s.storage).Logout(ctx); err != nil {
			s.Error(w, r, err)
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
