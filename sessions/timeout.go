package sessions

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2/memstore"
)

// DefaultStoreTimeout bounds each store operation that a [Browser] and its
// [Storage] make on the request path, unless [WithStoreTimeout] sets
// another bound.
const DefaultStoreTimeout = 2 * time.Second

// errStoreTimeout is the cause of a request context that a store
// operation of LoadAndSave outlived.
var errStoreTimeout = errors.New("sessions: the session store did not answer within the store timeout")

// WithTimeout returns a copy of s that bounds each of its operations by d:
// the context passed to the store carries a deadline d from the call. A
// store that honours the context (scs.CtxStore implementations such as
// goredisstore, with go-redis's ContextTimeoutEnabled) then fails after d,
// and the Storage answers storage_unavailable. d <= 0 sets no bound, which
// is what NewStorage and NewStorageFromManager give; [New] bounds the
// Browser's Storage by the store timeout.
func (s *Storage) WithTimeout(d time.Duration) *Storage {
	c := *s
	c.timeout = d
	return &c
}

// bound returns ctx with the Storage's per-operation deadline, or ctx as
// it is for memstore, which never waits: a deadline on a map operation
// costs a timer per call and bounds nothing.
func (s *Storage) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.InProcess() {
		return ctx, noCancel
	}
	return boundBy(ctx, s.timeout)
}

// bound returns ctx with the Browser's per-operation deadline (none for
// memstore, as Storage's).
func (b *Browser) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return boundBy(ctx, b.storeTimeout())
}

// storeTimeout is the bound of each operation on the manager's store as
// it is now: none for memstore, which never waits.
func (b *Browser) storeTimeout() time.Duration {
	if _, ok := b.sm.Store.(*memstore.MemStore); ok {
		return 0
	}
	return b.timeout
}

func noCancel() {}

// boundBy returns ctx with a deadline d ahead, or ctx as it is when d is
// not positive (no bound).
func boundBy(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return ctx, noCancel
	}
	return context.WithTimeout(ctx, d)
}

// boundedLoadAndSave is the manager's LoadAndSave with the loading of the
// session and its saving each bounded by the store timeout (d, below: none
// for memstore). scs uses the request's context
// for both, so the request gets a context whose deadline is armed only
// while scs talks to the store: the handler in between runs with the
// request's own deadline, and calls to the EHR are not cut short.
//
// With d <= 0 nothing is bounded, and the context only marks the request
// as inside the Browser's LoadAndSave ([Browser.Loaded]).
func (b *Browser) boundedLoadAndSave(next http.Handler) http.Handler {
	inner := b.sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc, _ := r.Context().Value(storeCtxKey{}).(*storeCtx)
		if sc == nil { // cannot happen: the outer handler put it there
			next.ServeHTTP(w, r)
			return
		}
		if sc.d <= 0 {
			next.ServeHTTP(w, r)
			return
		}
		sc.disarm() // loaded
		sc.w = savingWriter{ResponseWriter: w, sc: sc}
		next.ServeHTTP(&sc.w, r)
		sc.arm() // scs saves now, unless the handler wrote
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.loadedOutside(r) {
			// The app's own sm.LoadAndSave loaded the session: use it, and
			// leave the saving (and the one Set-Cookie) to it.
			next.ServeHTTP(w, r.WithContext(&storeCtx{Context: r.Context(), browser: b}))
			return
		}
		sc := &storeCtx{Context: r.Context(), browser: b, d: b.storeTimeout()}
		if sc.d > 0 {
			ctx, cancel := context.WithCancelCause(r.Context())
			defer cancel(nil)
			sc.Context, sc.cancel = ctx, cancel
			defer sc.disarm()
			sc.arm()
		}
		inner.ServeHTTP(w, r.WithContext(sc))
	})
}

// loadedOutside reports whether the request is already inside the
// LoadAndSave of the Browser's session manager, as when an app wraps its
// routes in sm.LoadAndSave and shares the manager with the adapters: then
// the session is loaded, and a second LoadAndSave would load it again, save
// it twice and send two Set-Cookie headers. scs's Load answers without a
// store call: with an empty token it returns the context as it is when a
// session of the manager is loaded, and a new one otherwise.
func (b *Browser) loadedOutside(r *http.Request) bool {
	ctx := r.Context()
	loaded, err := b.sm.Load(ctx, "")
	return err == nil && loaded == ctx
}

// Loaded reports whether ctx is the context of a request inside this
// Browser's [Browser.LoadAndSave], where the session is loaded.
func (b *Browser) Loaded(ctx context.Context) bool {
	sc, _ := ctx.Value(storeCtxKey{}).(*storeCtx)
	return sc != nil && sc.browser == b
}

type storeCtxKey struct{}

// storeCtx is a request's context with a deadline that can be armed around
// one store operation: when it passes, the whole request is cancelled,
// with errStoreTimeout as its cause, and the store's error answers 503.
// It also marks the request as inside the LoadAndSave of browser, and
// holds the request's savingWriter, so that one allocation serves all
// three.
type storeCtx struct {
	context.Context // the request's, with cancel when d > 0
	cancel          context.CancelCauseFunc
	browser         *Browser
	d               time.Duration // the bound of each store operation; <= 0 is none
	w               savingWriter

	mu       sync.Mutex
	deadline time.Time
	timer    *time.Timer // made at the first arm, then reset
}

func (c *storeCtx) arm() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = time.Now().Add(c.d)
	if c.timer == nil {
		c.timer = time.AfterFunc(c.d, c.expire)
		return
	}
	c.timer.Reset(c.d)
}

func (c *storeCtx) expire() { c.cancel(errStoreTimeout) }

func (c *storeCtx) disarm() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.deadline = time.Time{}
}

// Deadline is the armed deadline, or the request's when it is earlier or
// none is armed: clients such as go-redis put it on the connection.
func (c *storeCtx) Deadline() (time.Time, bool) {
	c.mu.Lock()
	armed := c.deadline
	c.mu.Unlock()
	d, ok := c.Context.Deadline()
	if !armed.IsZero() && (!ok || armed.Before(d)) {
		return armed, true
	}
	return d, ok
}

func (c *storeCtx) Value(key any) any {
	if key == (storeCtxKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// savingWriter arms the store deadline around the first write, where scs's
// writer underneath saves the session.
type savingWriter struct {
	http.ResponseWriter
	sc    *storeCtx
	wrote bool
}

func (w *savingWriter) save(write func()) {
	if w.wrote {
		write()
		return
	}
	w.wrote = true
	w.sc.arm()
	write()
	w.sc.disarm()
}

func (w *savingWriter) WriteHeader(code int) {
	w.save(func() { w.ResponseWriter.WriteHeader(code) })
}

// Write bounds only the session's save (at the header), not the write of
// b: a slow client must not run into the store's timeout.
func (w *savingWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *savingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
