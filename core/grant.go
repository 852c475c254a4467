package core

import (
	"strings"

	"github.com/fhirware/smart/core/scope"
)

// GrantedScope is the scope the EHR granted the launch, parsed: ask it what
// the launch may do with [scope.Set.Allows]. When the token response named
// no scope, the grant is the scope requested (RFC 6749 section 5.1). A
// refresh that names a new scope replaces it. It makes no network call.
func (rc *ReadyClient) GrantedScope() scope.Set {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return granted(rc.rec.Context.Scope, rc.rec.Requested)
}

// MissingScopes returns the tokens of the scope the launch requested that
// the EHR did not grant, such as ["patient/*.read", "offline_access"] for
// a grant of "launch openid fhirUser patient/Patient.read"; nil when it
// granted them all. A granted version 2 scope covers the version 1 scope it
// equals (patient/*.rs covers patient/*.read); a narrower one, such as a
// scope with a query, does not. The tokens are the app's own words. It
// makes no network call.
func (rc *ReadyClient) MissingScopes() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return granted(rc.rec.Context.Scope, rc.rec.Requested).Missing(scope.Parse(rc.rec.Requested))
}

// granted is the scope a token response granted: its scope or, when it
// names none, the requested one.
func granted(grant, requested string) scope.Set {
	if grant == "" {
		grant = requested
	}
	return scope.Parse(grant)
}

// requestedScope is the scope the authorize request asked for, as the
// pending launch keeps it; the configured one for a pending launch stored
// before it kept one.
func (p *pendingLaunch) requestedScope(e *Engine, is *Issuer) string {
	if p.Scope != "" {
		return p.Scope
	}
	return e.requestedScope(is, p.Launch != "")
}

// checkRequiredScope fails with CodeScopeDenied when g lacks any of
// Config.RequiredScope, naming the missing tokens: they are the app's own
// configuration, never the EHR's text.
func (e *Engine) checkRequiredScope(op string, g scope.Set) error {
	if e.cfg.RequiredScope == "" {
		return nil
	}
	missing := g.Missing(scope.Parse(e.cfg.RequiredScope))
	if missing == nil {
		return nil
	}
	return newError(op, CodeScopeDenied, "the EHR did not grant the scope the app requires: "+strings.Join(missing, " "), nil)
}
