package store

import (
	"context"
	"sync"

	"impo.com.uy/copetes/backend/shared/env"
)

var (
	defaultOnce  sync.Once
	defaultStore Store
	defaultErr   error
)

// Default returns the process's store, chosen at first use by STATE_STORE
// (memory, the default) and shared by every function in the process.
func Default(_ context.Context) (Store, error) {
	defaultOnce.Do(func() {
		var kind string
		if kind, defaultErr = env.OneOf("STATE_STORE", "memory", "memory"); defaultErr == nil {
			switch kind {
			case "memory":
				defaultStore = NewMemory(nil)
			}
		}
	})
	return defaultStore, defaultErr
}
