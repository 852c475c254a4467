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

// StoreKey is a key of Config.StoreKeys: StoreKeySize random bytes. Like
// Secret, it never shows itself in logs or formatted output, so printing a
// Config is safe.
type StoreKey []byte

// String returns "[redacted]" (or "" for an empty key).
func (k StoreKey) String() string { return Secret(k).String() }

// GoString returns the same as String, so %#v hides the key too.
func (k StoreKey) GoString() string { return k.String() }

// LogValue keeps the key out of slog output.
func (k StoreKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

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
