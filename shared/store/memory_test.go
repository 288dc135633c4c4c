package store_test

import (
	"sync"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/shared/store"
	"impo.com.uy/copetes/backend/shared/store/storetest"
)

func TestMemory_Conformance(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	storetest.Run(t, storetest.Backend{
		New:     func(*testing.T) store.Store { return store.NewMemory(clock) },
		Now:     clock,
		Advance: func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() },
		Unit:    time.Second,
	})
}
