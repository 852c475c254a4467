// Package sessions keeps SMART's state in scs: any scs.Store becomes the
// engine's [core.Storage], and an *scs.SessionManager gives each browser
// its SMART session id, in a cookie.
//
// The adapters package does all of this for an app; an app only chooses
// the store, with one line on a manager it owns:
//
//	sm := scs.New()
//	sm.Store = redisstore.New(pool) // or goredisstore, pgxstore; memstore by default
//	cfg.SessionManager = sm         // adapters.Config
//
// The SMART records (pending launches, launch records with their tokens,
// each browser's lists of them) then live in the same store as the
// sessions, under the key prefix "smart:", with the engine's time-to-live
// as the store's expiry. A store that fails gives a *core.Error with Code
// core.CodeStorageUnavailable, which the adapters answer with 503; a
// missing or expired record gives core.ErrNotFound.
//
// A [Browser] is the browser's side, for the adapters: its SMART session id
// ([Browser.LaunchID] at a launch, which saves nothing until
// [Browser.Launched]; [Browser.ID] after), the token renewal after a
// callback against session fixation ([Browser.RenewAfterCallback]), and
// the latest launch of the browser. Its LoadAndSave is the manager's,
// with each store operation bounded by a timeout; when the app's own
// sm.LoadAndSave of the same manager has loaded the session already, it
// uses that one, so that the session is saved once, with one Set-Cookie.
//
// # Several instances
//
// Three of the engine's operations read and then write, and must be atomic
// among every process that shares the records: the take of a pending
// launch at its callback (so that of concurrent callbacks with one state
// exactly one makes a token request), a token refresh (so that a launch is
// refreshed once and a rotated refresh token is never lost), and a change
// to a browser's list of launches (so that two tabs finishing together both
// keep their launch). Within one process the engine makes them atomic
// itself. Across processes it takes the lock of core.Config.Locker, the one
// place a lock is configured: the lock of the server that holds the store,
// from a package per client library, goredislock (go-redis), redislock
// (redigo) and pgxlock (pgx):
//
//	cfg.Locker = goredislock.New(client) // core.Config.Locker
//
// Without it, on a store shared by instances, each instance is atomic only
// within itself: a callback replayed to two instances at once may make two
// token requests (the EHR should refuse the second use of the code), two
// instances may refresh one launch together (an EHR that rotates refresh
// tokens strictly may then end it), and two tabs finishing on two instances
// at once may lose one launch from the browser's list. The adapters say so
// once, in a warning, when the store is not memstore (see
// [Storage.InProcess]) and no Locker is set.
//
// # The cookie
//
// The session cookie is HttpOnly, Secure, SameSite=Lax and named with the
// __Host- prefix (CookieName) by default, also on a manager the app passes,
// and [Browser.CheckCookie] refuses a Domain or a Path other than "/"; an
// app shown in an iframe by the EHR uses [CookieEmbeddedInEHR]
// (SameSite=None, Secure, Partitioned), and development over plain http
// uses [CookieInsecureHTTP].
package sessions
