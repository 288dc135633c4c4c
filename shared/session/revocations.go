package session

import (
	"context"
	"fmt"

	"impo.com.uy/copetes/backend/shared/store"
)

// Revocations records revoked token ids in the shared store until the
// token would have expired anyway.
type Revocations struct {
	Store store.Store
}

func revokedKey(jti string) string { return "revoked:" + jti }

// Revoke refuses the token with claims c from now on.
func (r Revocations) Revoke(ctx context.Context, c Claims) error {
	// Keep the record past exp by the most leeway a verifier allows.
	e := store.Entry{Value: 1, Expires: c.ExpiresAt().Add(MaxLeeway)}
	if err := r.Store.Put(ctx, revokedKey(c.ID), e); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
}

// IsRevoked reports whether the token with id jti was revoked.
func (r Revocations) IsRevoked(ctx context.Context, jti string) (bool, error) {
	_, ok, err := r.Store.Get(ctx, revokedKey(jti))
	if err != nil {
		return false, fmt.Errorf("check revocation: %w", err)
	}
	return ok, nil
}
