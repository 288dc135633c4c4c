package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Claims are the claims of a session token.
type Claims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience string   `json:"aud"`
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	ID       string   `json:"jti"`
	ClientID string   `json:"client_id"` // RFC 9068 §2.2: the account that asked
	Kind     string   `json:"kind"`      // "user" or "service"
	Roles    []string `json:"roles"`
	// SessionID (sid) names the login through a registered client that
	// the token belongs to: login's refresh family, renewed token after
	// token. Revocations.RevokeSession refuses every token of that login
	// at once. "" for a token a password or client credentials login
	// issued on its own.
	SessionID string `json:"sid,omitempty"`
}

// ExpiresAt returns the expiry as a time.
func (c Claims) ExpiresAt() time.Time { return time.Unix(c.Expiry, 0) }

// HasRole reports whether the claims carry role.
func (c Claims) HasRole(role string) bool { return slices.Contains(c.Roles, role) }

// TokenType is the JOSE "typ" of a JWT access token (RFC 9068 §2.1).
const TokenType = "at+jwt"

// MaxTokenSize bounds the tokens Verify reads: ours are about 600 bytes.
const MaxTokenSize = 4096

// MaxLeeway is the most clock skew a verifier may tolerate.
const MaxLeeway = 60 * time.Second

// MaxLifetime is the longest a session token may live (the ceiling of
// SESSION_TTL). Verifiers refuse a token whose exp is further than this
// from its iat: login never signs one, so only a leaked key can, and its
// holder should not also choose how long the token outlives the leak.
const MaxLifetime = 12 * time.Hour

// Issuer signs session tokens with the first key of the key set.
type Issuer struct {
	Keys     func(context.Context) (*KeySet, error)
	Issuer   string
	Audience string
	TTL      time.Duration
	Now      func() time.Time
}

// Issue signs a token for the account sub, which asked for it itself.
func (is *Issuer) Issue(ctx context.Context, sub, kind string, roles []string) (string, Claims, error) {
	return is.IssueFor(ctx, Grant{Subject: sub, Kind: kind, Roles: roles})
}

// ErrInvalid wraps every reason a token is refused; any other error from
// Verify means the check could not be made (keys or store unavailable).
var ErrInvalid = errors.New("invalid session token")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
