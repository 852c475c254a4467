package adaptertest

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
)

// flakyStore is an scs.Store that fails while down is set: the session
// store going away.
type flakyStore struct {
	scs.Store
	down atomic.Bool
}

var errStoreDown = errors.New("adaptertest: the store is down")

func newFlakyStore() *flakyStore { return &flakyStore{Store: memstore.NewWithCleanupInterval(0)} }

func (s *flakyStore) Find(token string) ([]byte, bool, error) {
	if s.down.Load() {
		return nil, false, errStoreDown
	}
	return s.Store.Find(token)
}

func (s *flakyStore) Commit(token string, b []byte, expiry time.Time) error {
	if s.down.Load() {
		return errStoreDown
	}
	return s.Store.Commit(token, b, expiry)
}

func (s *flakyStore) Delete(token string) error {
	if s.down.Load() {
		return errStoreDown
	}
	return s.Store.Delete(token)
}
