package adapters

import (
	"fmt"
	"log/slog"

	"github.com/alexedwards/scs/v2/memstore"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/sessions"
)

// warnUnsealed logs a warning, once when New builds a Smart, when the
// session store is not scs's in-memory store and the engine has no
// Config.StoreKeys: tokens and launch contexts would then sit in Redis or
// PostgreSQL readable by anyone who can read the store.
func warnUnsealed(log *slog.Logger, engine *core.Engine, browser *sessions.Browser) {
	if len(engine.Config().StoreKeys) > 0 {
		return
	}
	st := browser.SessionManager().Store
	if _, inMemory := st.(*memstore.MemStore); inMemory {
		return
	}
	log.Warn("the session store is not in memory and Config.StoreKeys is empty: tokens and launch contexts are stored unencrypted; set StoreKeys",
		slog.String("store", fmt.Sprintf("%T", st)))
}
