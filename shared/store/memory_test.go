package store_test

import (
	"testing"
	"time"

	"impo.com.uy/copetes/backend/internal/storetest"
	"impo.com.uy/copetes/backend/shared/store"
)

func TestMemory_Conformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		New: func(_ *testing.T, now func() time.Time) store.Store { return store.NewMemory(now) },
	})
}
