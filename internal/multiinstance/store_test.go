package multiinstance_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/sessions"
)

// countingStore is an scs.Store that counts the calls made to the store it
// wraps (each one a round trip to Redis or PostgreSQL), remembers the size
// of each value written, and deletes every key written when the test ends.
type countingStore struct {
	inner scs.Store

	// slowPending, when set, delays the answer to each read of a pending
	// launch by pendingDelay.
	slowPending atomic.Bool

	mu      sync.Mutex
	calls   map[string]int // "find", "commit", "delete"
	written map[string]int // key -> size of the last value written
}

func newCountingStore(inner scs.Store) *countingStore {
	return &countingStore{inner: inner, calls: map[string]int{}, written: map[string]int{}}
}

func (s *countingStore) count(op string) {
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
}

// reset sets the counts to zero and forgets the sizes, but not the keys.
func (s *countingStore) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
	for k := range s.written {
		s.written[k] = 0
	}
}

// counts returns the calls made since the last reset.
func (s *countingStore) counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		m[k] = v
	}
	return m
}

// writes returns the size of each value written since the last reset, by
// kind of key: for a SMART record, the part of the key before the first
// colon after sessions.DefaultKeyPrefix ("launch", "pending" …); for an
// scs session, "scs session".
func (s *countingStore) writes() map[string][]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string][]int{}
	for k, n := range s.written {
		if n == 0 {
			continue
		}
		kind := "scs session"
		if rest, ok := strings.CutPrefix(k, sessions.DefaultKeyPrefix); ok {
			kind, _, _ = strings.Cut(rest, ":")
		}
		m[kind] = append(m[kind], n)
	}
	return m
}

func (s *countingStore) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

func (s *countingStore) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

func (s *countingStore) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

// pendingDelay is how late a slowPending store answers a read of a
// pending launch: long enough for every instance's callback to read it
// before any deletes it, unless they take turns.
const pendingDelay = 50 * time.Millisecond

func (s *countingStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	s.count("find")
	if s.slowPending.Load() && strings.HasPrefix(token, sessions.DefaultKeyPrefix+"pending:") {
		defer time.Sleep(pendingDelay)
	}
	if cs, ok := s.inner.(scs.CtxStore); ok {
		return cs.FindCtx(ctx, token)
	}
	return s.inner.Find(token)
}

func (s *countingStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	s.count("commit")
	s.mu.Lock()
	s.written[token] = len(b)
	s.mu.Unlock()
	if cs, ok := s.inner.(scs.CtxStore); ok {
		return cs.CommitCtx(ctx, token, b, expiry)
	}
	return s.inner.Commit(token, b, expiry)
}

func (s *countingStore) DeleteCtx(ctx context.Context, token string) error {
	s.count("delete")
	if cs, ok := s.inner.(scs.CtxStore); ok {
		return cs.DeleteCtx(ctx, token)
	}
	return s.inner.Delete(token)
}

// deleteAll deletes every key ever written through s.
func (s *countingStore) deleteAll() {
	s.mu.Lock()
	keys := make([]string, 0, len(s.written))
	for k := range s.written {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	for _, k := range keys {
		if cs, ok := s.inner.(scs.CtxStore); ok {
			cs.DeleteCtx(context.Background(), k)
		} else {
			s.inner.Delete(k)
		}
	}
}

var _ scs.CtxStore = (*countingStore)(nil)

// countingLocker is a core.Locker that counts the round trips made to the
// locker it wraps: each TryLock, and each unlock.
type countingLocker struct {
	l     core.Locker
	calls atomic.Int64
}

func (c *countingLocker) TryLock(ctx context.Context, key string, ttl time.Duration) (func(context.Context) error, bool, error) {
	c.calls.Add(1)
	unlock, ok, err := c.l.TryLock(ctx, key, ttl)
	if !ok {
		return unlock, ok, err
	}
	return func(ctx context.Context) error {
		c.calls.Add(1)
		return unlock(ctx)
	}, true, nil
}

// prefixedStore is an scs store that keeps every key of the store it wraps
// under a prefix: a test's own part of a server other tests share.
type prefixedStore struct {
	inner  scs.Store
	prefix string
}

func underPrefix(inner scs.Store, prefix string) scs.Store {
	return withContextOf(inner, &prefixedStore{inner: inner, prefix: prefix})
}

// withContextOf returns wrapper, which wraps inner, as an scs.CtxStore
// only when inner is one, so that the library sees the store as it is: a
// store that takes no context (pgxstore) is not made to look like one.
func withContextOf(inner scs.Store, wrapper scs.CtxStore) scs.Store {
	if _, ok := inner.(scs.CtxStore); ok {
		return wrapper
	}
	return plainStore{wrapper}
}

// plainStore hides the context methods of the store it holds.
type plainStore struct{ s scs.Store }

func (p plainStore) Find(token string) ([]byte, bool, error) { return p.s.Find(token) }
func (p plainStore) Commit(token string, b []byte, expiry time.Time) error {
	return p.s.Commit(token, b, expiry)
}
func (p plainStore) Delete(token string) error { return p.s.Delete(token) }

func (s *prefixedStore) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

func (s *prefixedStore) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

func (s *prefixedStore) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

func (s *prefixedStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	if cs, ok := s.inner.(scs.CtxStore); ok {
		return cs.FindCtx(ctx, s.prefix+token)
	}
	return s.inner.Find(s.prefix + token)
}

func (s *prefixedStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	if cs, ok := s.inner.(scs.CtxStore); ok {
		return cs.CommitCtx(ctx, s.prefix+token, b, expiry)
	}
	return s.inner.Commit(s.prefix+token, b, expiry)
}

func (s *prefixedStore) DeleteCtx(ctx context.Context, token string) error {
	if cs, ok := s.inner.(scs.CtxStore); ok {
		return cs.DeleteCtx(ctx, s.prefix+token)
	}
	return s.inner.Delete(s.prefix + token)
}

var _ scs.CtxStore = (*prefixedStore)(nil)
