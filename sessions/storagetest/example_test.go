package storagetest_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/sessions/storagetest"
)

// mapStorage is a custom core.Storage, and core.Taker, kept in a map: the
// kind of thing a backend for another server starts from.
type mapStorage struct {
	mu      sync.Mutex
	records map[string]mapRecord
}

type mapRecord struct {
	value  []byte
	expiry time.Time
}

func newMapStorage() *mapStorage { return &mapStorage{records: make(map[string]mapRecord)} }

func (m *mapStorage) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mapstorage: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[key]
	if !ok || !time.Now().Before(r.expiry) {
		return nil, core.ErrNotFound
	}
	return bytes.Clone(r.value), nil
}

func (m *mapStorage) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mapstorage: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records[key] = mapRecord{append([]byte{}, value...), time.Now().Add(ttl)}
	return nil
}

func (m *mapStorage) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mapstorage: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.records, key)
	return nil
}

func (m *mapStorage) Take(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mapstorage: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[key]
	delete(m.records, key)
	if !ok || !time.Now().Before(r.expiry) {
		return nil, core.ErrNotFound
	}
	return r.value, nil
}

// A backend's test runs the suite with a fresh, empty storage for each
// case (for a server: a client under a key prefix of the case's own), and
// the outage check with a way to take the server away.
func Example() {
	// In mapstorage_test.go:
	TestMapStorage := func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) core.Storage {
			return newMapStorage()
		})
	}
	_ = TestMapStorage
}

// The example's storage keeps the contract.
func TestMapStorage(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) core.Storage { return newMapStorage() })
}
