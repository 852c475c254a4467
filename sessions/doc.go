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
//	err = b.Renew(ctx)                    // after a successful callback: new scs token, whole Lifetime
//
// The SMART records (pending launches, launch records with their tokens)
// live in the same store as the app's sessions, under the key prefix
// "smart:", with the engine's time-to-live as the store's expiry. A store
// that fails gives a *core.Error with Code core.CodeStorageUnavailable,
// which adapters answer with 503; a missing or expired record gives
// core.ErrNotFound.
//
// Several app instances behind a load balancer share the store, and should
// share a lock too, so that a launch's token is refreshed once and a rotated
// refresh token is never lost: an scs.Store cannot express one, so the lock
// comes from the store's server, in a package of its own per client
// library — goredislock (go-redis), redislock (redigo) and pgxlock (pgx) —
// and is joined to the storage with [Storage.WithLocker] (or given to the
// adapters as adapters.Config.Locker).
//
// The session cookie is HttpOnly, Secure, SameSite=Lax and named with the
// __Host- prefix (CookieName) by default, also on a manager the app passes,
// and [Browser.CheckCookie] refuses a Domain or a Path other than "/"; an
// app shown in an iframe by the EHR uses [EmbeddedInEHR] (SameSite=None,
// Secure, Partitioned), and development over plain http uses
// [AllowInsecureHTTP].
package sessions
