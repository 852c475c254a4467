package core

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"
)

// recordVersion is the version of the stored record encoding. A record of
// another version is treated as missing, so an upgrade never misreads one.
const recordVersion = 1

// Storage keys. Pending launches are keyed by session and state, so a
// state is useless in another browser session: a callback from another
// session finds nothing to take, and cannot even burn the launch.
// Finished launches are keyed by handle alone (256 random bits), so that
// the record can be fetched concurrently with the browser session; the
// record names its session, and a load from another session finds nothing
// (see loadLaunch).
func pendingKey(sid, state string) string { return "pending:" + sid + ":" + state }
func launchKey(handle string) string      { return "launch:" + handle }
func indexKey(sid string) string          { return "launches:" + sid }
func pendingIndexKey(sid string) string   { return "pendings:" + sid }
func indexLockKey(sid string) string      { return "lock:launches:" + sid }
func refreshLockKey(sid, handle string) string {
	return "lock:refresh:" + sid + ":" + handle
}

// pendingLaunch is the record kept between launch and callback.
type pendingLaunch struct {
	V        int       `json:"v"`
	Session  string    `json:"sid"`
	Issuer   string    `json:"iss"`
	Launch   string    `json:"launch,omitempty"`
	Verifier Secret    `json:"pkce"`
	Nonce    string    `json:"nonce"`
	Expires  time.Time `json:"exp"`
	// Scope is the scope of the authorize request.
	Scope string `json:"scope,omitempty"`
	// RedirectURI is the redirect_uri of the authorize request: the
	// issuer's CallbackURL. The code exchange sends it again, and the
	// callback must have come to it.
	RedirectURI string `json:"ruri"`
}

// tokens are a launch's credentials.
type tokens struct {
	Access  Secret    `json:"at"`
	Refresh Secret    `json:"rt,omitempty"`
	Expiry  time.Time `json:"exp,omitzero"`
	Issued  time.Time `json:"iat,omitzero"`
}

// stale reports whether the access token is expired or about to: within
// leeway of its expiry, or within half its lifetime when that is shorter,
// so a token that lives less than the leeway is still used.
func (t *tokens) stale(now time.Time, leeway time.Duration) bool {
	if t.Expiry.IsZero() {
		return false
	}
	if !t.Issued.IsZero() {
		leeway = min(leeway, t.Expiry.Sub(t.Issued)/2)
	}
	return !now.Add(leeway).Before(t.Expiry)
}

// launchRecord is a finished launch: its tokens and context.
type launchRecord struct {
	V       int           `json:"v"`
	Session string        `json:"sid"` // the browser session that owns it
	Handle  string        `json:"h"`
	Tokens  tokens        `json:"tok"`
	Context LaunchContext `json:"ctx"`
	Created time.Time     `json:"created"`
	// Requested is the scope the launch asked for.
	Requested string `json:"req,omitempty"`
	// FHIRVersion is the FHIR server's version (Discovery.FHIRVersion) at
	// the callback, which its FHIR requests ask for; empty when unknown,
	// as in records stored before it was kept.
	FHIRVersion string `json:"fv,omitempty"`
}

// launchIndex lists a session's launch handles, oldest first.
type launchIndex struct {
	V       int      `json:"v"`
	Handles []string `json:"h"`
}

// newSecretString returns 256 random bits, base64url without padding.
func newSecretString() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return b64.EncodeToString(b[:])
}

// record is a stored record: it knows its encoding's version.
type record interface{ version() int }

func (p *pendingLaunch) version() int { return p.V }
func (r *launchRecord) version() int  { return r.V }
func (x *launchIndex) version() int   { return x.V }

// getRecord loads, opens and decodes a record. A missing or undecodable
// record gives ErrNotFound, one that does not open errUnsealable (which is
// an ErrNotFound too); a storage failure gives CodeStorageUnavailable.
func (e *Engine) getRecord(ctx context.Context, st Storage, op, key string, v record) error {
	b, err := st.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return storageError(op, err)
	}
	return e.openRecord(ctx, key, b, v)
}

// openRecord opens a stored value with the engine's StoreKeys and decodes
// the record in it. A value that does not open gives errUnsealable, and a
// warning in the log (with the reason, never the value); one that does not
// decode gives ErrNotFound.
func (e *Engine) openRecord(ctx context.Context, key string, b []byte, v record) error {
	plain, err := e.ring.open(key, b)
	if err != nil {
		e.log.LogAttrs(ctx, logWarn, "a stored record does not open with Config.StoreKeys; it is treated as missing", attrErr(err))
		return err
	}
	if decodeRecord(plain, v) != nil {
		return ErrNotFound
	}
	return nil
}

// decodeRecord decodes a record and checks its version. A record of another
// version is refused: an upgrade never misreads one.
func decodeRecord(b []byte, v record) error {
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	if got := v.version(); got != recordVersion {
		return fmt.Errorf("record version %d, want %d", got, recordVersion)
	}
	return nil
}

// loadLaunch loads the launch record of handle that belongs to session
// sid: a record of another session (or one without a session, written
// before records named theirs) gives ErrNotFound, as a missing one does.
// Launch records are read on every request of the app; the engine keeps
// the last decode of each, and reuses it while the stored bytes are the
// same.
func (e *Engine) loadLaunch(ctx context.Context, st Storage, op, sid, handle string) (launchRecord, error) {
	rec, err := e.loadLaunchKey(ctx, st, op, launchKey(handle))
	return ownedBy(rec, err, sid)
}

// ownedBy returns a launch record that was read (rec, err) if it belongs
// to session sid, and ErrNotFound, as for a missing one, if it belongs to
// another session or to none. The session ids are compared in constant
// time: how long the comparison takes says nothing of the record's.
func ownedBy(rec launchRecord, err error, sid string) (launchRecord, error) {
	if err == nil && (sid == "" || !sameSecret(rec.Session, sid)) {
		return launchRecord{}, ErrNotFound
	}
	return rec, err
}

// sameSecret reports whether a and b are equal, in a time that depends on
// their lengths only (as crypto/subtle.ConstantTimeCompare, without
// copying the strings to byte slices).
func sameSecret(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := 0; i < len(a); i++ {
		v |= a[i] ^ b[i]
	}
	return subtle.ConstantTimeByteEq(v, 0) == 1
}

func (e *Engine) loadLaunchKey(ctx context.Context, st Storage, op, key string) (launchRecord, error) {
	b, err := st.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return launchRecord{}, ErrNotFound
	}
	if err != nil {
		return launchRecord{}, storageError(op, err)
	}
	if rec, ok := e.decoded.get(key, b); ok {
		return rec, nil
	}
	var rec launchRecord
	if err := e.openRecord(ctx, key, b, &rec); err != nil {
		return launchRecord{}, err
	}
	e.decoded.put(key, b, rec) // by the sealed bytes: a hit skips opening too
	return rec, nil
}

// maxRecordBytes bounds a stored record. A launch record is well under 8
// KiB with real tokens; a token response that would make it larger (a
// launch context stuffed with extra fields) is refused.
const maxRecordBytes = 64 << 10

// putRecord encodes a record, seals it for its key with the engine's
// StoreKeys (see seal.go) and stores it.
func (e *Engine) putRecord(ctx context.Context, st Storage, op, key string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return newError(op, CodeStorageUnavailable, "encoding a record", err)
	}
	if len(b) > maxRecordBytes {
		return newError(op, CodeTokenExchangeFailed, fmt.Sprintf("the launch's record would take %d bytes, more than %d: the token response carries too much", len(b), maxRecordBytes), nil)
	}
	if err := st.Set(ctx, key, e.ring.seal(key, b), ttl); err != nil {
		return storageError(op, err)
	}
	return nil
}

// pendingLockTTL bounds how long taking a pending launch may hold its lock.
const pendingLockTTL = 10 * time.Second

// takePending loads and deletes the pending launch of state in one atomic
// step: with the Storage's Take when it is a Taker; otherwise a Get and a
// Delete under a mutex of the process and, when Config.Locker is set, its
// lock shared by every process. Of two concurrent callbacks with one
// state, exactly one gets the launch; the other gets ErrNotFound.
func (e *Engine) takePending(ctx context.Context, st Storage, op, sid, state string, p *pendingLaunch) error {
	key := pendingKey(sid, state)
	if t, ok := st.(Taker); ok {
		b, err := t.Take(ctx, key)
		switch {
		case errors.Is(err, ErrNotFound):
			return ErrNotFound
		case err != nil:
			return storageError(op, err)
		}
		return e.openRecord(ctx, key, b, p)
	}
	mu := &e.pendingMu[stripe(state)]
	mu.Lock()
	defer mu.Unlock()
	if l := e.cfg.Locker; l != nil {
		unlock, held, err := l.TryLock(ctx, "lock:"+key, pendingLockTTL)
		if err != nil {
			return storageError(op, err)
		}
		if !held {
			return ErrNotFound // another instance is taking it
		}
		defer unlock(context.WithoutCancel(ctx))
	}
	if err := e.getRecord(ctx, st, op, key, p); err != nil {
		return err
	}
	return deleteRecord(ctx, st, op, key)
}

func deleteRecord(ctx context.Context, st Storage, op, key string) error {
	if err := st.Delete(ctx, key); err != nil && !errors.Is(err, ErrNotFound) {
		return storageError(op, err)
	}
	return nil
}

func storageError(op string, err error) error {
	var e *Error
	if errors.As(err, &e) && e.Code == CodeStorageUnavailable {
		return &Error{Op: op, Code: CodeStorageUnavailable, Description: e.Description, Err: e.Err}
	}
	return newError(op, CodeStorageUnavailable, "the session storage failed", err)
}

// indexLockTTL bounds how long a change to a session's launch index may
// hold the index's lock.
const indexLockTTL = 10 * time.Second

// lockIndex serialises changes to the session's launch index: within the
// process by a mutex per session (striped), across processes by
// Config.Locker when it is set. Without them, two tabs finishing
// their callbacks at once could each write the index and lose a handle.
func (s *session) lockIndex(ctx context.Context, op string) (func(), error) {
	mu := &s.engine.indexMu[stripe(s.id)]
	mu.Lock()
	l := s.engine.cfg.Locker
	if l == nil {
		return mu.Unlock, nil
	}
	unlock, err := acquireFor(ctx, op, CodeStorageUnavailable, "the lock on the session's launches", l, indexLockKey(s.id), indexLockTTL)
	if err != nil {
		mu.Unlock()
		return nil, err
	}
	return func() {
		_ = unlock(context.WithoutCancel(ctx))
		mu.Unlock()
	}, nil
}

// stripe picks one of the engine's index mutexes for a session id.
func stripe(sid string) int {
	h := fnv.New32a()
	h.Write([]byte(sid))
	return int(h.Sum32() % indexStripes)
}

// addToIndex records a new launch handle as the session's most recent and
// evicts the oldest launches beyond MaxLaunches. It returns the evicted
// handles, whose records the caller deletes.
func (s *session) addToIndex(ctx context.Context, op, handle string) ([]string, error) {
	return s.pushList(ctx, op, indexKey(s.id), handle, s.engine.cfg.MaxLaunches, s.engine.cfg.LaunchTTL)
}

// pushList adds item as the newest of the session's list under key (once),
// keeps the newest max items, stores the list for ttl and returns the
// items it dropped. Changes to the session's lists are serialised by
// lockIndex.
func (s *session) pushList(ctx context.Context, op, key, item string, max int, ttl time.Duration) ([]string, error) {
	e := s.engine
	unlock, err := s.lockIndex(ctx, op)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var idx launchIndex
	if err := e.getRecord(ctx, s.store, op, key, &idx); err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	idx.V = recordVersion
	idx.Handles = append(slices.DeleteFunc(idx.Handles, func(h string) bool { return h == item }), item)
	var dropped []string
	if n := len(idx.Handles) - max; n > 0 {
		dropped = slices.Clone(idx.Handles[:n])
		idx.Handles = idx.Handles[n:]
	}
	if err := e.putRecord(ctx, s.store, op, key, &idx, ttl); err != nil {
		return nil, err
	}
	return dropped, nil
}

// addPending records a new pending launch's state as the session's most
// recent and deletes the oldest pending launches beyond
// MaxPendingLaunches, so that one browser cannot fill the store. The list
// lives as long as a pending launch; it may name launches already finished
// or expired, whose deletion is then a no-op.
func (s *session) addPending(ctx context.Context, op, state string) error {
	e := s.engine
	evicted, err := s.pushList(ctx, op, pendingIndexKey(s.id), state, e.cfg.MaxPendingLaunches, e.cfg.PendingLaunchTTL)
	if err != nil {
		return err
	}
	for _, st := range evicted {
		if err := deleteRecord(ctx, s.store, op, pendingKey(s.id, st)); err != nil {
			return err
		}
	}
	return nil
}

// removeFromIndex drops an ended launch's handle from the session's list.
func (s *session) removeFromIndex(ctx context.Context, op, handle string) error {
	unlock, err := s.lockIndex(ctx, op)
	if err != nil {
		return err
	}
	defer unlock()
	var idx launchIndex
	if err := s.engine.getRecord(ctx, s.store, op, indexKey(s.id), &idx); err != nil {
		return err
	}
	n := len(idx.Handles)
	idx.Handles = slices.DeleteFunc(idx.Handles, func(h string) bool { return h == handle })
	if len(idx.Handles) == n {
		return nil
	}
	return s.engine.putRecord(ctx, s.store, op, indexKey(s.id), &idx, s.engine.cfg.LaunchTTL)
}

// latestHandle returns the session's most recent launch handle.
func (s *session) latestHandle(ctx context.Context, op string) (string, error) {
	var idx launchIndex
	if err := s.engine.getRecord(ctx, s.store, op, indexKey(s.id), &idx); err != nil {
		return "", err
	}
	if len(idx.Handles) == 0 {
		return "", ErrNotFound
	}
	return idx.Handles[len(idx.Handles)-1], nil
}

// Handles returns the session's launch handles, oldest first.
func (s *session) handles(ctx context.Context) ([]string, error) {
	var idx launchIndex
	err := s.engine.getRecord(ctx, s.store, "handles", indexKey(s.id), &idx)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return idx.Handles, err
}

// Logout revokes the tokens of the session's launches at EHRs that
// advertise a revocation endpoint, then deletes every launch of the
// session, with its tokens, and every launch it has started and not
// finished. The revocation runs before the index's lock is taken, so a
// slow EHR never holds the lock.
func (s *session) logout(ctx context.Context) error {
	handles, err := s.handles(ctx)
	if err != nil {
		return err
	}
	s.revokeLaunches(ctx, handles)
	unlock, err := s.lockIndex(ctx, "logout")
	if err != nil {
		return err
	}
	defer unlock()
	// Read again under the lock: a launch finished meanwhile ends too.
	handles, err = s.handles(ctx)
	if err != nil {
		return err
	}
	for _, h := range handles {
		if err := deleteRecord(ctx, s.store, "logout", launchKey(h)); err != nil {
			return err
		}
	}
	// Launches started and not finished end too: their callbacks would
	// otherwise still log the browser in after the logout.
	var pending launchIndex
	if err := s.engine.getRecord(ctx, s.store, "logout", pendingIndexKey(s.id), &pending); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	for _, st := range pending.Handles {
		if err := deleteRecord(ctx, s.store, "logout", pendingKey(s.id, st)); err != nil {
			return err
		}
	}
	if err := deleteRecord(ctx, s.store, "logout", pendingIndexKey(s.id)); err != nil {
		return err
	}
	return deleteRecord(ctx, s.store, "logout", indexKey(s.id))
}
