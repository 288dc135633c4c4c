package store_test

import (
	"testing"
	"time"

	"impo.com.uy/copetes/backend/internal/testclock"
	"impo.com.uy/copetes/backend/shared/store"
	"impo.com.uy/copetes/backend/shared/store/storetest"
)

func TestMemory_Conformance(t *testing.T) {
	clock := testclock.New(testclock.Start)
	storetest.Run(t, storetest.Backend{
		New:     func(*testing.T) store.Store { return store.NewMemory(clock.Now) },
		Now:     clock.Now,
		Advance: clock.Advance,
		Unit:    time.Second,
	})
}
