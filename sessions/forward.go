package sessions

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/fhirware/smart/core"
)

// ForwardTTL is how long a session token that [Browser.RenewAfterCallback]
// replaced keeps a forward to its SMART session. It covers the callbacks
// that the browser's other tabs sent with the old cookie before the new
// one reached it, which arrive within a network round trip; it is kept
// short because, while it lasts, the old token can still finish a launch
// (see [Browser.Forwarded]).
const ForwardTTL = 30 * time.Second

// maxTokenLen bounds the cookie value looked up as a forwarded token: scs
// tokens are 43 characters.
const maxTokenLen = 128

// forwardKey is the Storage key of the forward from an old session token.
// The token is hashed: the store holds no cookie value, old or new.
func forwardKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "forward:" + hex.EncodeToString(sum[:])
}

// userHash hides the EHR user a forward is bound to.
func userHash(user string) string {
	sum := sha256.Sum256([]byte("smart forward user\x00" + user))
	return hex.EncodeToString(sum[:])
}

type forwardRecord struct {
	V       int    `json:"v"`
	Session string `json:"sid"`
	User    string `json:"user"` // userHash of the user who finished the renewing callback
}

// A Forward is what a renewed session token leaves behind for
// [ForwardTTL]: the SMART session the token named, and the EHR user whose
// callback renewed it. [Browser.Forwarded] finds it.
type Forward struct {
	session string
	user    string
}

// Session returns the SMART session id the old token named. Use it only to
// finish a callback, whose pending launch must belong to that session.
func (f Forward) Session() string { return f.session }

// SameUser reports whether user, as [LaunchUser] gives it, is the one whose
// callback renewed the token. An empty user is never the same.
func (f Forward) SameUser(user string) bool {
	return user != "" && subtle.ConstantTimeCompare([]byte(userHash(user)), []byte(f.user)) == 1
}

// LaunchUser names the EHR user of a finished launch for
// [Browser.RenewAfterCallback] and [Forward.SameUser]: the id_token's
// issuer and subject. It is empty when the launch has no id_token (its
// scope had no openid), and then a renewal leaves no forward.
func LaunchUser(lc core.LaunchContext) string {
	if lc.Subject == "" {
		return ""
	}
	return lc.AuthIssuer + "\x00" + lc.Subject
}

// RenewAfterCallback is [Browser.Renew] for the end of a successful
// callback finished by user (see [LaunchUser]): it renews the session
// token and, when user is not empty, keeps in the Storage a forward from
// the old token to the browser's SMART session for [ForwardTTL].
//
// The forward lets the browser's other tabs, whose callbacks left with the
// old cookie before the new one arrived, finish their launches: see
// [Browser.Forwarded]. It is honoured for nothing else, so the old token
// still names no session, and the renewal keeps its defence against
// session fixation. A failing store gives a storage_unavailable
// *core.Error.
func (b *Browser) RenewAfterCallback(ctx context.Context, user string) error {
	// The forward is written before the renewal deletes the old token, so
	// that a tab's callback never finds neither.
	old := b.sm.Token(ctx)
	if id, ok := b.ID(ctx); ok && old != "" && user != "" {
		v, err := json.Marshal(forwardRecord{V: 1, Session: id, User: userHash(user)})
		if err != nil {
			return err
		}
		if err := b.storage.Set(ctx, forwardKey(old), v, ForwardTTL); err != nil {
			return err
		}
	}
	return b.Renew(ctx)
}

// Forwarded returns the forward left by [Browser.RenewAfterCallback] for
// the session token in r's cookie, when the browser's session is gone
// because that token was renewed less than [ForwardTTL] ago. It reports
// false when the session loaded, when the request has no such cookie, and
// when the token has no forward.
//
// A forward may be used for one thing only: to finish a callback whose
// state is a pending launch of the forward's session (core's Callback
// checks that the pending launch belongs to the session it runs for) and
// whose launch was authorized by the same EHR user ([Forward.SameUser]).
// Then [Browser.Adopt] gives the browser a new cookie for the session.
// Every other request with the old token finds no session. Someone who
// planted the old token in the browser (session fixation) knows neither
// the state of the browser's launches nor the user's EHR credentials; a
// launch of their own in that session ends with another user, and must be
// refused.
//
// A failing store gives a storage_unavailable *core.Error.
func (b *Browser) Forwarded(ctx context.Context, r *http.Request) (Forward, bool, error) {
	if _, ok := b.ID(ctx); ok || b.sm.Token(ctx) != "" {
		return Forward{}, false, nil
	}
	c, err := r.Cookie(b.sm.Cookie.Name)
	if err != nil || c.Value == "" || len(c.Value) > maxTokenLen {
		return Forward{}, false, nil
	}
	v, err := b.storage.Get(ctx, forwardKey(c.Value))
	switch {
	case errors.Is(err, core.ErrNotFound):
		return Forward{}, false, nil
	case err != nil:
		return Forward{}, false, err
	}
	var f forwardRecord
	if json.Unmarshal(v, &f) != nil || f.V != 1 || f.Session == "" || f.User == "" {
		return Forward{}, false, nil
	}
	return Forward{session: f.Session, user: f.User}, true, nil
}

// Adopt puts the forward's SMART session in the request's browser session,
// which Forwarded found empty, for the manager's whole Lifetime: the
// response sets a new session token, not the old one. Call it only after
// the forwarded callback succeeded for the same user (see
// [Browser.Forwarded]).
func (b *Browser) Adopt(ctx context.Context, f Forward) {
	b.sm.Put(ctx, sessionIDKey, f.session)
	b.sm.SetDeadline(ctx, time.Now().Add(b.sm.Lifetime))
}
