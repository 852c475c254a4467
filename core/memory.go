package core

import (
	"context"
	"slices"
	"sync"
	"time"
)

// NewMemoryStorage returns a Storage that keeps its records in this
// process's memory, honouring their time-to-live: the engine's default, and
// the store for tests, examples and apps that run as one instance. Its
// records are gone when the process ends, and other instances cannot see
// them. It is a [Taker], and safe for concurrent use.
func NewMemoryStorage() Storage { return newMemoryStorage(time.Now) }

func newMemoryStorage(now func() time.Time) *memoryStorage {
	return &memoryStorage{now: now, data: map[string]memoryRecord{}}
}

type memoryStorage struct {
	now  func() time.Time
	mu   sync.Mutex
	data map[string]memoryRecord
	sets int // Sets since the last sweep of expired records
}

type memoryRecord struct {
	value   []byte
	expires time.Time
}

// sweepEvery is how many Sets pass between two sweeps of expired records,
// so that a process that never reads them again does not keep them.
const sweepEvery = 1024

func (m *memoryStorage) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := m.find(ctx, key, false)
	return slices.Clone(v), err
}

// find returns the live value under key, deleting the entry when take is
// set (or when it has expired).
func (m *memoryStorage) find(ctx context.Context, key string, take bool) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.data[key]
	live := ok && m.now().Before(r.expires)
	if take || (ok && !live) {
		delete(m.data, key)
	}
	if !live {
		return nil, ErrNotFound
	}
	return r.value, nil
}

func (m *memoryStorage) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if m.sets++; m.sets >= sweepEvery {
		m.sets = 0
		for k, r := range m.data {
			if !now.Before(r.expires) {
				delete(m.data, k)
			}
		}
	}
	m.data[key] = memoryRecord{value: slices.Clone(value), expires: now.Add(ttl)}
	return nil
}

func (m *memoryStorage) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.data, key)
	return nil
}

// Take returns the value under key and deletes it, in one step.
func (m *memoryStorage) Take(ctx context.Context, key string) ([]byte, error) {
	return m.find(ctx, key, true)
}
