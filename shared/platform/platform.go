// Package platform is what the functions of one process share: where
// secrets come from and where the state that crosses instances lives.
// Each function gets it as an argument; no package finds it on its own.
package platform

import (
	"context"
	"fmt"

	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/store"
)

// Platform holds the process's secret source and state store.
type Platform struct {
	Secrets secrets.Source
	Store   store.Store
	// SharedStore says the store is seen by every instance (Firestore),
	// not only by this process (memory): caches of what another instance
	// may change are then worth bounding.
	SharedStore bool
}

// FromEnv builds the platform the environment describes (see
// secrets.ConfigFromEnv and store.ConfigFromEnv). The clients keep ctx, so
// it must outlive the process's requests.
func FromEnv(ctx context.Context) (*Platform, error) {
	sc, err := secrets.ConfigFromEnv()
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	stc, err := store.ConfigFromEnv()
	if err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	src, err := secrets.Open(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	st, err := store.Open(ctx, stc)
	if err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	return &Platform{Secrets: src, Store: st, SharedStore: stc.Shared()}, nil
}
