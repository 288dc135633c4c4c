// Package oauth keeps the grants of login's authorization server in the
// shared state store, so that any instance can redeem what another issued:
// authorization codes bound to PKCE (RFC 6749 §4.1, RFC 7636) and refresh
// token families that rotate on every use (RFC 9700 §4.14). It knows
// nothing of HTTP: login maps its errors to RFC 6749 §5.2 answers.
//
// Codes and refresh tokens are bearer secrets: the store holds only their
// SHA-256, in keys and nowhere else, so that reading the store (a backup,
// a console) yields nothing to redeem.
package oauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Authorization is what a person granted a client on the hosted page.
type Authorization struct {
	ClientID    string    `json:"client_id"`
	RedirectURI string    `json:"redirect_uri"`
	Subject     string    `json:"sub"`
	Scope       []string  `json:"scope,omitempty"` // granted scopes, e.g. ["openid"]
	Nonce       string    `json:"nonce,omitempty"` // OIDC nonce from the request, "" if none
	AuthTime    time.Time `json:"auth_time"`       // when the person typed the password
	AMR         []string  `json:"amr,omitempty"`   // ["pwd"]
	// Family is the session id: it names the refresh token family and is
	// the ID token's "sid", so that logout can end what the login began.
	Family string `json:"family"`
}

// ErrInvalidGrant is RFC 6749's invalid_grant: a code or refresh token
// that is unknown, expired, used, revoked, or presented by another client,
// for another redirect URI or with the wrong PKCE verifier. The client
// cannot tell these apart, and should not: each says "start again".
var ErrInvalidGrant = errors.New("invalid grant")

// invalid is ErrInvalidGrant with the reason, for the server's own log.
func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalidGrant, reason) }

// ReplayError is an authorization code redeemed a second time: someone
// else holds it (RFC 6749 §4.1.2 says to revoke what it issued). It names
// what the first redemption issued, for the caller to revoke: the refresh
// family (Refresh.Revoke) and the access token id with its expiry.
type ReplayError struct {
	Family       string
	TokenID      string
	TokenExpires time.Time
}

func (e *ReplayError) Error() string {
	return fmt.Sprintf("invalid grant: authorization code redeemed twice (family %s, token %s)", e.Family, e.TokenID)
}

// Unwrap makes errors.Is(err, ErrInvalidGrant) hold.
func (e *ReplayError) Unwrap() error { return ErrInvalidGrant }

// ReuseError is a refresh token used a second time: either it leaked or
// two tabs raced, and RFC 9700 §4.14.2 revokes the whole family either
// way. The family is already revoked when this is returned; TokenID (with
// its expiry) is the last access token the family issued, for the caller
// to revoke. TokenID is "" when the family had already ended.
type ReuseError struct {
	Family       string
	TokenID      string
	TokenExpires time.Time
}

func (e *ReuseError) Error() string {
	return fmt.Sprintf("invalid grant: refresh token reused; family %s revoked (last token %s)", e.Family, e.TokenID)
}

// Unwrap makes errors.Is(err, ErrInvalidGrant) hold.
func (e *ReuseError) Unwrap() error { return ErrInvalidGrant }

// secretBytes is the entropy of a code and of a refresh token: 256 bits,
// beyond guessing however many tries the store answers.
const secretBytes = 32

// secretLen is the length of a code or refresh token as handed out.
var secretLen = base64.RawURLEncoding.EncodedLen(secretBytes)

// newSecret returns a fresh code or refresh token.
func newSecret() string { return random(secretBytes) }

// wellFormed reports whether s could be a code or refresh token we made:
// anything else is refused before it costs a store read.
func wellFormed(s string) bool {
	if len(s) != secretLen {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == secretBytes
}

// digest names a secret in the store: its SHA-256 in hex. The secrets are
// 256 random bits, so a plain hash is as good as a keyed one.
func digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewFamilyID returns a fresh session id (128 random bits, base64url): it
// names a refresh family and is the ID token's "sid". It is not a secret
// (the ID token shows it), only unguessable.
func NewFamilyID() string { return random(16) }

// NewTokenID returns a fresh access token id (jti) in the session tokens'
// format (128 random bits, base64url), for Refresh.Rotate.
func NewTokenID() string { return random(16) }

// clock returns now, or time.Now when it is nil.
func clock(now func() time.Time) time.Time {
	if now == nil {
		return time.Now()
	}
	return now()
}
