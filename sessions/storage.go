package sessions

import (
	"bytes"
	"context"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/fhirware/smart/core"
)

// DefaultKeyPrefix is put in front of every key a [Storage] writes, so that
// SMART records never collide with the app's own sessions in a shared store.
// scs session tokens are base64url and never contain a colon.
const DefaultKeyPrefix = "smart:"

// MinTTL is the shortest time-to-live a [Storage] keeps a record for:
// shorter ones are raised to it. Redis and SQL stores compute the expiry from
// the app's clock when the command is sent, so a sub-second lifetime may
// have run out before it arrives (goredisstore then keeps the record with no
// expiry at all).
const MinTTL = time.Second

// Storage is a [core.Storage] kept in an scs.Store: memstore, redisstore,
// goredisstore, pgxstore, postgresstore, mysqlstore, sqlite3store or any
// other. Each record is one store entry under the key prefix plus the
// engine's key, with the time-to-live as the entry's expiry.
//
// When the store implements the context methods of scs.CtxStore
// (goredisstore does), the request's context is passed on, so a cancelled
// request stops waiting for Redis or the database; go-redis puts the
// context's deadline on the connection only when its Options set
// ContextTimeoutEnabled. Stores without them (redisstore, and pgxstore at
// the version this module requires) cannot be interrupted: give their pool
// dial, read and write timeouts. Every call first checks the context, so a cancelled
// context fails with every store.
//
// A failing store gives a *core.Error with Code
// [core.CodeStorageUnavailable], Op "storage" and the store's error as the
// cause; a missing or expired record gives [core.ErrNotFound].
//
// A Storage is not a [core.Taker]: an scs.Store has no get-and-delete. The
// engine takes a pending launch with a Get and a Delete under its lock of
// the process, which is atomic for memstore (it lives in that process) and
// for any store only one app instance uses, and under core.Config.Locker
// across instances (see the package documentation).
//
// A Storage is safe for concurrent use when its store is. Make one with
// [NewStorage] or [NewStorageFromManager].
type Storage struct {
	store  func() scs.Store
	prefix string
	// timeout bounds each operation (WithTimeout); 0 is no bound.
	timeout time.Duration
}

// NewStorage returns a Storage that keeps its records in store, under
// DefaultKeyPrefix. It panics if store is nil.
func NewStorage(store scs.Store) *Storage {
	if store == nil {
		panic("sessions: NewStorage: nil store")
	}
	return &Storage{store: func() scs.Store { return store }, prefix: DefaultKeyPrefix}
}

// NewStorageFromManager returns a Storage that keeps its records in
// sm.Store, under DefaultKeyPrefix. It reads sm.Store on every call, so the
// one-line swap
//
//	sm.Store = redisstore.New(pool)
//
// moves the SMART records too, even when it runs after this call. It panics
// if sm is nil.
//
// The records share the store with the app's sessions. An app that calls
// sm.Iterate should give SMART a store of its own with [NewStorage], since
// Iterate would try to decode SMART records as sessions.
func NewStorageFromManager(sm *scs.SessionManager) *Storage {
	if sm == nil {
		panic("sessions: NewStorageFromManager: nil session manager")
	}
	return &Storage{store: func() scs.Store { return sm.Store }, prefix: DefaultKeyPrefix}
}

// WithPrefix returns a copy of s that puts prefix, instead of s's prefix, in
// front of every key. Use it to keep several apps, or tests, apart in one
// store. The prefix should not be empty when the store also holds scs
// sessions.
func (s *Storage) WithPrefix(prefix string) *Storage {
	c := *s
	c.prefix = prefix
	return &c
}

// Prefix returns the prefix s puts in front of every key.
func (s *Storage) Prefix() string { return s.prefix }

// InProcess reports whether s's store, as it is at the call, is scs's
// memstore: records that live in this process only, so that the engine's
// lock of the process makes every operation on them atomic and no shared
// lock is needed. For any other store, app instances that share it need
// core.Config.Locker.
func (s *Storage) InProcess() bool {
	_, ok := s.store().(*memstore.MemStore)
	return ok
}

// Interruptible reports whether s's store, as it is at the call, takes a
// context (the context methods of scs.CtxStore, as goredisstore has), so
// that a read stops when its request is cancelled or no longer needs it,
// as far as the store's client watches the context (go-redis does with
// ContextTimeoutEnabled; without it, a read runs until its answer or the
// client's own timeouts). The engine reads a launch record at the same
// time as the browser's session only from such a store: from any other, a
// read that turns out not to be needed would go on holding a connection.
func (s *Storage) Interruptible() bool {
	_, ok := s.store().(interface {
		FindCtx(context.Context, string) ([]byte, bool, error)
	})
	return ok
}

// Get returns a copy of the value stored under key, or core.ErrNotFound when
// there is none or its time-to-live has run out.
func (s *Storage) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, storageError("read a record", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		b     []byte
		found bool
		err   error
	)
	switch st := s.store().(type) {
	case interface {
		FindCtx(context.Context, string) ([]byte, bool, error)
	}:
		b, found, err = st.FindCtx(ctx, s.prefix+key)
	default:
		b, found, err = st.Find(s.prefix + key)
	}
	if err != nil {
		return nil, storageError("read a record", err)
	}
	if !found {
		return nil, core.ErrNotFound
	}
	// memstore hands out the slice it holds; never share it.
	return bytes.Clone(b), nil
}

// Set stores a copy of value under key for ttl, replacing any value already
// there. A ttl below MinTTL is raised to MinTTL; a ttl of zero or less
// deletes the key, since nothing may be kept for it.
func (s *Storage) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return s.Delete(ctx, key)
	}
	if err := ctx.Err(); err != nil {
		return storageError("write a record", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ttl = max(ttl, MinTTL)
	expiry := time.Now().Add(ttl).UTC()
	// A store may keep the slice (memstore does); the caller may reuse it.
	value = bytes.Clone(value)
	if value == nil {
		value = []byte{}
	}
	var err error
	switch st := s.store().(type) {
	case interface {
		CommitCtx(context.Context, string, []byte, time.Time) error
	}:
		err = st.CommitCtx(ctx, s.prefix+key, value, expiry)
	default:
		err = st.Commit(s.prefix+key, value, expiry)
	}
	if err != nil {
		return storageError("write a record", err)
	}
	return nil
}

// Delete removes key. Deleting a missing key is not an error.
func (s *Storage) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return storageError("delete a record", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var err error
	switch st := s.store().(type) {
	case interface {
		DeleteCtx(context.Context, string) error
	}:
		err = st.DeleteCtx(ctx, s.prefix+key)
	default:
		err = st.Delete(s.prefix + key)
	}
	if err != nil {
		return storageError("delete a record", err)
	}
	return nil
}

// storageError wraps a store's failure, or the context's, as a
// storage_unavailable *core.Error. The key stays out of the message: it may
// be a state value or a launch handle.
func storageError(what string, cause error) error {
	return &core.Error{
		Code:        core.CodeStorageUnavailable,
		Op:          "storage",
		Description: "the session store failed to " + what,
		Err:         cause,
	}
}

var _ core.Storage = (*Storage)(nil)
