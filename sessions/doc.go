// Package sessions plugs scs into the SMART engine: any scs.Store becomes a
// [core.Storage], and an *scs.SessionManager gives each browser its SMART
// session.
//
// One Browser per app, made at startup:
//
//	sm := scs.New()                       // or nil: New makes one, memstore
//	b := sessions.New(sm)
//	sm.Store = redisstore.New(pool)       // the one-line swap, before or after New
//
// Then, on each request inside b.LoadAndSave:
//
//	id, _, err := b.LaunchID(ctx)         // launch: the SMART session id, or a fresh one not yet saved
//	sess := eng.Session(id, b.Storage())  // cheap, per request
//	url, err := sess.Launch(ctx, req)
//	b.Launched(ctx, id, pendingTTL)       // only after success: a failed launch leaves no session
//	…
//	res, err := sess.Callback(ctx, core.CallbackRequest{…,
//		BeforeStore: func(ctx context.Context, lc core.LaunchContext) error {
//			return b.RenewAfterCallback(ctx, sessions.LaunchUser(lc)) // new scs token before the launch is stored
//		}})
//	b.SetLatestHandle(ctx, res.Handle)    // requests without a handle find it in their own session
//
// The SMART records (pending launches, launch records with their tokens)
// live in the same store as the app's sessions, under the key prefix
// "smart:", with the engine's time-to-live as the store's expiry. A store
// that fails gives a *core.Error with Code core.CodeStorageUnavailable,
// which adapters answer with 503; a missing or expired record gives
// core.ErrNotFound.
//
// # Atomic operations: the rule
//
// Three of the engine's operations are read-then-write and must be atomic
// among every process that shares the records: the take of a pending
// launch at its callback (so that of concurrent callbacks with one state
// exactly one makes a token request), a token refresh (so that a launch is
// refreshed once and a rotated refresh token is never lost), and a change
// to a browser's list of launches (so that two tabs finishing together
// both keep their launch). The engine makes each atomic with what the
// Storage offers: the take with core.Taker, the other two with core.Locker,
// and otherwise with its own lock of the process, which is enough for one
// app instance and for scs's memstore, whose records live in that process
// anyway.
//
// An scs.Store can express neither, so a [Storage] is neither. Several app
// instances that share a store join a lock from the store's server, in a
// package of its own per client library — goredislock (go-redis),
// redislock (redigo) and pgxlock (pgx) — with [Storage.WithLocker] (or give
// it to the adapters as adapters.Config.Locker). The [LockingStorage] this
// makes is a Locker and a Taker whose Take is atomic across processes:
// one Redis script or one PostgreSQL DELETE … RETURNING when the locker
// reaches the store (a [StoreTaker]), the Storage's mutex for memstore,
// and a Get and a Delete under the lock for any other store.
//
// The native take and the take under the lock exclude each other, so
// instances may differ in which they use (a locker built over another
// client or pool than the store's, on some instances only) and still take
// each launch once: the native take honours the lock the other holds,
// "lock:" and the key under the Storage's prefix. The Redis script checks
// that the lock's key is absent and takes the record in one step, and
// takes nothing while it is there; pgxlock takes the lock's row, the
// record and releases the row in one transaction, so that a take under
// the lock waits for it, and it takes nothing while the lock is held. A
// native take that meets the lock answers core.ErrNotFound, as the engine
// does when it finds the lock of a pending launch held: the holder is
// taking it. Instances of an earlier version of this module take natively
// without looking at the lock: while a deploy replaces them, give every
// instance its locker over the store's own client or pool.
//
// Without a shared lock, on a store shared by instances, each instance is
// atomic only within itself: a callback replayed to two instances at once
// may make two token requests (the EHR should refuse the second use of the
// code), two instances may refresh one launch together (an EHR that
// rotates refresh tokens strictly may then end it), and two tabs finishing
// on two instances at once may lose one launch from the browser's list.
// adapters.New says so once, in a warning naming adapters.Config.Locker,
// when its store is not memstore (see [Storage.InProcess]) and it has no
// Locker.
//
// The session cookie is HttpOnly, Secure, SameSite=Lax and named with the
// __Host- prefix (CookieName) by default, also on a manager the app passes,
// and [Browser.CheckCookie] refuses a Domain or a Path other than "/"; an
// app shown in an iframe by the EHR uses [CookieEmbeddedInEHR] (SameSite=None,
// Secure, Partitioned), and development over plain http uses
// [CookieInsecureHTTP].
package sessions
