package storagetest_test

import (
	"testing"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/sessions/storagetest"
)

// The engine's default storage keeps the contract, Take included: it is a
// core.Taker, so the cases of Take run and are not skipped.
func TestMemoryStorage(t *testing.T) {
	t.Parallel()
	if _, ok := core.NewMemoryStorage().(core.Taker); !ok {
		t.Fatal("core.NewMemoryStorage is not a core.Taker: the contract's Take cases would be skipped")
	}
	storagetest.Run(t, func(t *testing.T) core.Storage { return core.NewMemoryStorage() })
}
