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

// Platform holds the process's secret source and state stores.
type Platform struct {
	Secrets secrets.Source
	// Store is the function's own state: lock-outs for login, rate counts
	// for gettoken, handled messages for validate. No other function
	// writes it.
	Store store.Store
	// Sessions holds the revocations: login writes them, every verifier
	// reads them. Deployed, each is its own Firestore database, and IAM
	// gives each function only the access its part needs.
	Sessions store.Store
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
	own, sessions, err := store.Open(ctx, stc)
	if err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	return &Platform{Secrets: src, Store: own, Sessions: sessions, SharedStore: stc.Shared()}, nil
}
