package benchmarks

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/fhirware/smart/core"
)

// BenchmarkReadySealed is the ready path with its records sealed
// (Config.StoreKeys, AES-256-GCM) beside the same path without keys:
// benchstat -col /keys. The engine keeps the last decode of each launch
// record by its stored bytes, so a warm request opens nothing; a record is
// opened again after each write (a refresh, or another instance's).
func BenchmarkReadySealed(b *testing.B) {
	key := core.Secret(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	b.Run("store=memstore/keys=none", func(b *testing.B) { benchSmart(b, memstore.NewWithCleanupInterval(0)) })
	b.Run("store=memstore/keys=1", func(b *testing.B) { benchSmart(b, memstore.NewWithCleanupInterval(0), key) })
	if c := redisClient(b); c != nil {
		b.Run("store=redis/keys=none", func(b *testing.B) { benchSmart(b, goredisstore.NewWithPrefix(c, prefix(b))) })
		b.Run("store=redis/keys=1", func(b *testing.B) { benchSmart(b, goredisstore.NewWithPrefix(c, prefix(b)), key) })
	}
}
