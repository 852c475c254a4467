package core

import (
	"context"
	"sync/atomic"

	"github.com/fhirware/smart/internal/hooks"
)

// A launch record is keyed by its handle alone and names its browser, so
// that the ready path can read it from the Storage at the same time as the
// browser's session, before the browser's id is known: on a store across
// the network, one round trip of latency instead of two. The record is
// then checked against the browser the session names, as loadLaunch does.
//
// The adapters start the read (hooks.PrefetchLaunch) when the request
// carries a handle, and Ready finds it in the request's context.

func init() {
	hooks.PrefetchLaunch = func(ctx context.Context, engine any, handle string) (context.Context, func()) {
		e, ok := engine.(*Engine)
		if !ok {
			return ctx, func() {}
		}
		return e.prefetchLaunch(ctx, handle)
	}
	hooks.PrefetchesLaunch = func(engine any) bool {
		e, ok := engine.(*Engine)
		return ok && overlaps(e.cfg.Storage)
	}
}

// launchPrefetch is a launch record's read, started before the browser's
// session was loaded.
type launchPrefetch struct {
	engine *Engine
	handle string
	done   chan struct{} // closed when rec and err are set
	rec    launchRecord
	err    error
	// taken is set by the one Ready that uses the record: any later one
	// in the request (after a refresh, say) reads the Storage again.
	taken atomic.Bool
}

type prefetchKey struct{}

// prefetchLaunch starts reading the launch record of handle, and returns
// ctx with the read in it, for Ready, and a stop function that cancels the
// read and waits for it to end: the caller defers it, so that the read
// never outlives the request. It starts nothing when the handle is
// malformed, when the Storage is in the process (where a read costs no
// round trip, and a goroutine would only add to it), or when it says its
// reads cannot be interrupted (see overlaps).
func (e *Engine) prefetchLaunch(ctx context.Context, handle string) (context.Context, func()) {
	if handle == "" || len(handle) > maxHandleLen || !overlaps(e.cfg.Storage) {
		return ctx, func() {}
	}
	fctx, cancel := context.WithCancel(ctx)
	p := &launchPrefetch{engine: e, handle: handle, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.rec, p.err = e.loadLaunchKey(fctx, e.store, "ready", launchKey(handle))
	}()
	return context.WithValue(ctx, prefetchKey{}, p), func() {
		cancel()
		<-p.done
	}
}

// prefetched returns the record read by a prefetch of handle in ctx,
// waiting for the read, and true; or false when ctx holds none for handle
// on this engine, or its record was used already.
func (e *Engine) prefetched(ctx context.Context, handle string) (launchRecord, error, bool) {
	p, _ := ctx.Value(prefetchKey{}).(*launchPrefetch)
	if p == nil || p.engine != e || p.handle != handle || !p.taken.CompareAndSwap(false, true) {
		return launchRecord{}, nil, false
	}
	select {
	case <-p.done:
		return p.rec, p.err, true
	case <-ctx.Done():
		return launchRecord{}, storageError("ready", context.Cause(ctx)), true
	}
}

// overlaps reports whether a read from st may run beside the session's
// load: st is not in the process (the engine's memory storage, or a
// Storage whose InProcess says so, as sessions.Storage on scs's memstore),
// where a read costs no round trip and a goroutine would only add to it;
// and its reads can be interrupted (a Storage whose Interruptible says
// otherwise, as sessions.Storage on a store that takes no context, is
// not), so that a read the request turns out not to need, because its
// session failed to load or names no browser, is cancelled at once rather
// than holding a connection of the store until the store's own timeout.
func overlaps(st Storage) bool {
	if _, ok := st.(*memoryStorage); ok {
		return false
	}
	if s, ok := st.(interface{ InProcess() bool }); ok && s.InProcess() {
		return false
	}
	if s, ok := st.(interface{ Interruptible() bool }); ok && !s.Interruptible() {
		return false
	}
	return true
}
