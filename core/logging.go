package core

import (
	"log/slog"
	"net/http"
)

const logWarn = slog.LevelWarn

// Secret is a string that never shows itself in logs or formatted output:
// access, refresh and id tokens are kept as Secrets. Convert it with
// string(s) where the value itself is needed.
type Secret string

// String returns "[redacted]" (or "" for an empty Secret).
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString returns the same as String, so %#v hides the value too.
func (s Secret) GoString() string { return s.String() }

// LogValue keeps the value out of slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// attrURL logs a request's URL without its query, which may carry a code.
func attrURL(r *http.Request) slog.Attr {
	u := *r.URL
	u.RawQuery = ""
	u.User = nil
	return slog.String("url", u.String())
}

func attrStatus(status int) slog.Attr { return slog.Int("status", status) }

func attrErr(err error) slog.Attr { return slog.String("error", err.Error()) }

func slogIssuer(is *Issuer) slog.Attr { return slog.String("issuer", is.URL) }

const logDebug = slog.LevelDebug

func slogBool(k string, v bool) slog.Attr { return slog.Bool(k, v) }
