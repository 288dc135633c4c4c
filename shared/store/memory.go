package store

import (
	"bytes"
	"context"
	"sync"
	"time"
)

// Memory is a Store in this process's memory: the local default. It is
// shared by the functions of one process and by nothing else. A sharded
// counter is one entry here: one process's mutex has no write rate to
// spread.
type Memory struct {
	mu      sync.Mutex
	now     func() time.Time
	entries map[string]Entry
	sweepAt time.Time
}

// NewMemory returns an empty in-memory store; now may be nil (time.Now).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, entries: map[string]Entry{}}
}

// live returns the unexpired entry at key. Callers hold m.mu.
func (m *Memory) live(key string, now time.Time) (Entry, bool) {
	e, ok := m.entries[key]
	if ok && !now.Before(e.Expires) {
		delete(m.entries, key)
		return Entry{}, false
	}
	return e, ok
}

// detached returns e with a Data of its own, so that neither the caller
// nor the store sees the other change it (as with a remote store).
func detached(e Entry) Entry {
	e.Data = bytes.Clone(e.Data)
	return e
}

// sweep drops expired entries once a minute, so that keys that are never
// read again (one failed login from each of many addresses) do not pile up.
func (m *Memory) sweep(now time.Time) {
	if now.Before(m.sweepAt) {
		return
	}
	m.sweepAt = now.Add(time.Minute)
	for k, e := range m.entries {
		if !now.Before(e.Expires) {
			delete(m.entries, k)
		}
	}
}

// Add implements Store.
func (m *Memory) Add(_ context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweep(now)
	e, ok := m.live(key, now)
	if !ok {
		e = Entry{Expires: now.Add(ttl)}
	}
	e.Value += delta
	m.entries[key] = e
	return e.Value, nil
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) (Entry, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.live(key, m.now())
	return detached(e), ok, nil
}

// GetMany implements Store.
func (m *Memory) GetMany(_ context.Context, keys ...string) ([]Entry, []bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	entries, found := make([]Entry, len(keys)), make([]bool, len(keys))
	for i, k := range keys {
		entries[i], found[i] = m.live(k, now)
		entries[i] = detached(entries[i])
	}
	return entries, found, nil
}

// Put implements Store.
func (m *Memory) Put(_ context.Context, key string, e Entry) error {
	if err := notACounter("put", key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries[key] = detached(e)
	return nil
}

// Claim implements Store.
func (m *Memory) Claim(_ context.Context, key string, e Entry) (bool, error) {
	if err := notACounter("claim", key); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweep(now)
	if _, ok := m.live(key, now); ok {
		return false, nil
	}
	m.entries[key] = detached(e)
	return true, nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, key)
	return nil
}
