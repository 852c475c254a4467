package core

import (
	"net/http"
	"strings"
)

// Code is a stable, machine-readable error code. Programs switch on codes;
// the words of an error message may change, a code does not.
//
// A Code is itself an error, so errors.Is can test for it:
//
//	if errors.Is(err, core.CodeLaunchExpired) { … offer to relaunch … }
type Code string

// The error codes. Each maps to an HTTP status with [Code.HTTPStatus].
const (
	// CodeInvalidRequest: a launch or callback request is missing a
	// parameter or has a malformed one (400).
	CodeInvalidRequest Code = "invalid_request"
	// CodeUnknownIssuer: the issuer is not in Config.Issuers and
	// AllowAnyIssuer is off, or the issuer URL is not allowed (403).
	CodeUnknownIssuer Code = "unknown_issuer"
	// CodeDiscoveryFailed: the issuer's SMART configuration could not be
	// fetched or understood (502).
	CodeDiscoveryFailed Code = "discovery_failed"
	// CodeInvalidState: the callback's state names no pending launch of
	// this browser: unknown, already used, or older than
	// Config.PendingLaunchTTL (400).
	CodeInvalidState Code = "invalid_state"
	// CodeAuthorizationDenied: the EHR answered the authorization request
	// with an error, such as access_denied (403).
	CodeAuthorizationDenied Code = "authorization_denied"
	// CodeScopeDenied: the EHR granted a launch less than
	// Config.RequiredScope; the Description names the missing scopes
	// (403).
	CodeScopeDenied Code = "scope_denied"
	// CodeTokenExchangeFailed: the token endpoint refused or failed the
	// code exchange, or could not be reached for a refresh (502).
	CodeTokenExchangeFailed Code = "token_exchange_failed"
	// CodeInvalidIDToken: the id_token failed verification (502).
	CodeInvalidIDToken Code = "invalid_id_token"
	// CodeNoLaunch: this browser has no launch (or the request names no
	// browser), or the launch handle names none of its launches (401).
	CodeNoLaunch Code = "no_launch"
	// CodeLaunchExpired: the launch's tokens ran out and cannot be
	// refreshed; the user must launch again (401).
	CodeLaunchExpired Code = "launch_expired"
	// CodeRefreshFailed: the token endpoint refused a refresh (its grant
	// is revoked or expired), or the refreshed id_token failed its checks;
	// the launch is ended (401). A token endpoint that cannot be reached
	// during a refresh gives CodeTokenExchangeFailed and the launch stays.
	CodeRefreshFailed Code = "refresh_failed"
	// CodeFHIRRequestFailed: a launch's FHIR request could not be sent:
	// its connection failed, or its address was refused (502). A FHIR
	// server's error answer is a *fhir.Error, with its status.
	CodeFHIRRequestFailed Code = "fhir_request_failed"
	// CodeStorageUnavailable: the Storage failed; nothing was changed that
	// the error does not say (503).
	CodeStorageUnavailable Code = "storage_unavailable"
	// CodeInvalidConfig: the Config is incomplete or contradictory. It is
	// returned by [New], by [Engine.Backend] for an issuer whose Auth
	// cannot do Backend Services, and by [Engine.Launch] of an engine
	// without a CallbackURL.
	CodeInvalidConfig Code = "invalid_config"
)

// Error returns the code prefixed with "smart: ".
func (c Code) Error() string { return "smart: " + string(c) }

// HTTPStatus is the status an HTTP handler should answer with for an error of
// this code. Unknown codes map to 500.
func (c Code) HTTPStatus() int {
	switch c {
	case CodeInvalidRequest, CodeInvalidState:
		return http.StatusBadRequest
	case CodeNoLaunch, CodeLaunchExpired, CodeRefreshFailed:
		return http.StatusUnauthorized
	case CodeUnknownIssuer, CodeAuthorizationDenied, CodeScopeDenied:
		return http.StatusForbidden
	case CodeDiscoveryFailed, CodeTokenExchangeFailed, CodeInvalidIDToken, CodeFHIRRequestFailed:
		return http.StatusBadGateway
	case CodeStorageUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Error is the one error type of this package. Every error the engine
// returns is an *Error, so callers can read the Code with errors.As, or test
// for one with errors.Is(err, core.CodeX).
//
// Messages never contain a token.
type Error struct {
	// Code is the stable code.
	Code Code
	// Op is the operation that failed: "launch", "callback", "ready",
	// "refresh", "fhir", "discover", "logout", "config", "backend".
	Op string
	// Description is a sentence for people, such as which check failed.
	// Pages show it, so it never carries text from the request or from an
	// EHR (an issuer URL, an error_description, an OperationOutcome, an
	// id): that text, control characters stripped, is in Err, for logs.
	// It may be empty.
	Description string
	// Err is the underlying cause, or nil.
	Err error

	status int // the token endpoint's HTTP status, for the refresh's decision
}

// Error returns "smart: op: code: description: cause".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("smart: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(string(e.Code))
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is this error's Code, so that
// errors.Is(err, core.CodeInvalidState) works.
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

func newError(op string, code Code, desc string, cause error) *Error {
	return &Error{Op: op, Code: code, Description: desc, Err: cause}
}
