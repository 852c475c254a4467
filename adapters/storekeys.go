package adapters

import (
	"fmt"
	"log/slog"
)

// warnStore logs, once, at the first request (when the store is known for
// sure: the README's one-line swap may come after New), what a store other
// than scs's in-memory one lacks: a Locker, without which callbacks,
// refreshes and launch lists are atomic within this instance only (see the
// sessions package's "Atomic operations"); and Config.StoreKeys, without
// which tokens and launch contexts sit in Redis or PostgreSQL readable by
// anyone who can read the store.
func (s *Smart) warnStore() {
	if s.browser.Storage().InProcess() {
		return
	}
	store := slog.String("store", fmt.Sprintf("%T", s.browser.SessionManager().Store))
	if !s.hasLocker {
		s.log.Warn("the session store may be shared by several app instances and Config.Locker is nil: callbacks, refreshes and launch lists are atomic within this instance only; set Config.Locker", store)
	}
	if len(s.engine.Config().StoreKeys) == 0 {
		s.log.Warn("the session store is not in memory and Config.StoreKeys is empty: tokens and launch contexts are stored unencrypted; set StoreKeys", store)
	}
}
