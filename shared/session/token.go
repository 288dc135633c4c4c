package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"impo.com.uy/copetes/backend/shared/strictjson"
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

// Issue signs a token for the account sub.
func (is *Issuer) Issue(ctx context.Context, sub, kind string, roles []string) (string, Claims, error) {
	ks, err := is.Keys(ctx)
	if err != nil {
		return "", Claims{}, err
	}
	jti := make([]byte, 16) // 128 random bits
	rand.Read(jti)
	now := is.Now()
	if roles == nil {
		roles = []string{}
	}
	c := Claims{
		Issuer:   is.Issuer,
		Subject:  sub,
		Audience: is.Audience,
		IssuedAt: now.Unix(),
		Expiry:   now.Add(is.TTL).Unix(),
		ID:       base64.RawURLEncoding.EncodeToString(jti),
		ClientID: sub,
		Kind:     kind,
		Roles:    roles,
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: ks.signer},
		(&jose.SignerOptions{}).WithType(TokenType))
	if err != nil {
		return "", Claims{}, fmt.Errorf("session signer: %w", err)
	}
	payload, _ := json.Marshal(c)
	sig, err := signer.Sign(payload)
	if err != nil {
		return "", Claims{}, fmt.Errorf("sign session token: %w", err)
	}
	token, err := sig.CompactSerialize()
	return token, c, err
}

// ErrInvalid wraps every reason a token is refused; any other error from
// Verify means the check could not be made (keys or store unavailable).
var ErrInvalid = errors.New("invalid session token")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Verifier checks session tokens. It is the one implementation every
// function uses.
type Verifier struct {
	Keys        func(context.Context) (PublicKeys, error)
	Issuer      string
	Audience    string
	Leeway      time.Duration // at most MaxLeeway
	Revocations Revocations
	Now         func() time.Time

	// seen remembers tokens whose signature and claims already checked
	// out, so that a caller presenting the same token again skips the
	// signature (most of a verification's cost). Expiry, the signing key's
	// presence in the current set, and revocation are checked every time.
	seen seenTokens
}

// seenTokens is a bounded map from a token's SHA-256 to its claims and kid.
type seenTokens struct {
	mu sync.Mutex
	m  map[[32]byte]seenToken
}

type seenToken struct {
	claims Claims
	kid    string
}

// maxSeen bounds the memory the map takes (about 1 KiB an entry).
const maxSeen = 10000

func (s *seenTokens) get(sum [32]byte) (seenToken, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[sum]
	return e, ok
}

func (s *seenTokens) put(sum [32]byte, e seenToken, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[[32]byte]seenToken{}
	}
	if len(s.m) >= maxSeen {
		for k, v := range s.m {
			if !now.Before(v.claims.ExpiresAt().Add(MaxLeeway)) {
				delete(s.m, k)
			}
		}
		if len(s.m) >= maxSeen {
			clear(s.m)
		}
	}
	s.m[sum] = e
}

// headerFields are the only protected header parameters accepted. In
// particular "jwk", "jku", "x5u" and "x5c" (a key chosen by the token
// itself) and "crit" are refused.
var headerFields = []string{"alg", "kid", "typ"}

// Verify checks token and returns its claims: EdDSA only, a known kid,
// typ at+jwt, exact iss and aud, exp required, iat not in the future,
// exp at most MaxLifetime after iat, bounded size, not revoked.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	if len(token) > MaxTokenSize {
		return Claims{}, invalid("longer than %d bytes", MaxTokenSize)
	}
	sum := sha256.Sum256([]byte(token))
	if seen, ok := v.seen.get(sum); ok {
		return v.recheck(ctx, seen)
	}
	c, kid, err := v.verifyFully(ctx, token)
	if err != nil {
		return Claims{}, err
	}
	v.seen.put(sum, seenToken{c, kid}, v.Now())
	return v.checkRevoked(ctx, c)
}

// recheck is Verify for a token whose signature and claims checked out
// before: what may have changed since is checked again.
func (v *Verifier) recheck(ctx context.Context, seen seenToken) (Claims, error) {
	keys, err := v.Keys(ctx)
	if err != nil {
		return Claims{}, fmt.Errorf("session verification keys: %w", err)
	}
	if _, ok := keys[seen.kid]; !ok {
		return Claims{}, invalid("unknown key id %q", seen.kid)
	}
	c := seen.claims
	if !v.Now().Before(c.ExpiresAt().Add(min(v.Leeway, MaxLeeway))) {
		return Claims{}, invalid("expired at %s", c.ExpiresAt().UTC().Format(time.RFC3339))
	}
	return v.checkRevoked(ctx, c)
}

// checkRevoked refuses a token revoked by its id, or issued before its
// subject's sessions were ended (one store read for both).
func (v *Verifier) checkRevoked(ctx context.Context, c Claims) (Claims, error) {
	why, err := v.Revocations.Refused(ctx, c)
	if err != nil {
		return Claims{}, err
	}
	if why != "" {
		return Claims{}, invalid("%s", why)
	}
	return c, nil
}

// verifyFully checks the signature and the claims, and returns the kid
// that signed.
func (v *Verifier) verifyFully(ctx context.Context, token string) (Claims, string, error) {
	header, _, ok := strings.Cut(token, ".")
	if !ok {
		return Claims{}, "", invalid("not a compact JWS")
	}
	if err := checkHeader(header); err != nil {
		return Claims{}, "", err
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return Claims{}, "", invalid("%v", err)
	}
	kid := jws.Signatures[0].Protected.KeyID
	keys, err := v.Keys(ctx)
	if err != nil {
		return Claims{}, "", fmt.Errorf("session verification keys: %w", err)
	}
	pub, ok := keys[kid]
	if !ok {
		return Claims{}, "", invalid("unknown key id %q", kid)
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return Claims{}, "", invalid("bad signature")
	}
	c, err := v.checkClaims(payload)
	return c, kid, err
}

func checkHeader(segment string) error {
	raw, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		return invalid("header is not base64url")
	}
	var h map[string]json.RawMessage
	if err := strictjson.Check(raw); err != nil {
		return invalid("header: %v", err)
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return invalid("header is not a JSON object")
	}
	for name := range h {
		if !slices.Contains(headerFields, name) {
			return invalid("header parameter %q is not accepted", name)
		}
	}
	var typ string
	json.Unmarshal(h["typ"], &typ)
	if !strings.EqualFold(typ, TokenType) && !strings.EqualFold(typ, "application/"+TokenType) {
		return invalid("typ is %q, want %q", typ, TokenType)
	}
	return nil
}

// wireClaims accepts "aud" as a string or an array (RFC 7519 §4.1.3).
type wireClaims struct {
	Claims
	Audience  json.RawMessage `json:"aud"`
	NotBefore *int64          `json:"nbf"`
}

func (v *Verifier) checkClaims(payload []byte) (Claims, error) {
	if err := strictjson.Check(payload); err != nil {
		return Claims{}, invalid("claims: %v", err)
	}
	var w wireClaims
	if err := json.Unmarshal(payload, &w); err != nil {
		return Claims{}, invalid("claims: %v", err)
	}
	c := w.Claims
	var auds []string
	if err := json.Unmarshal(w.Audience, &c.Audience); err == nil {
		auds = []string{c.Audience}
	} else if err := json.Unmarshal(w.Audience, &auds); err != nil {
		return Claims{}, invalid("aud is neither a string nor an array of strings")
	}
	now := v.Now()
	leeway := min(v.Leeway, MaxLeeway)
	switch {
	case c.Issuer != v.Issuer:
		return Claims{}, invalid("iss is %q, want %q", c.Issuer, v.Issuer)
	case !slices.Contains(auds, v.Audience):
		return Claims{}, invalid("aud does not include %q", v.Audience)
	case c.Expiry == 0:
		return Claims{}, invalid("exp is missing")
	case !now.Before(time.Unix(c.Expiry, 0).Add(leeway)):
		return Claims{}, invalid("expired at %s", time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339))
	case c.IssuedAt <= 0:
		return Claims{}, invalid("iat is missing or before 1970")
	case time.Unix(c.IssuedAt, 0).After(now.Add(leeway)):
		return Claims{}, invalid("issued in the future")
	// exp and iat are both positive here (a negative exp has expired), so
	// the difference cannot overflow.
	case c.Expiry-c.IssuedAt > int64(MaxLifetime/time.Second):
		return Claims{}, invalid("exp is %ds after iat, more than the %s a session may live", c.Expiry-c.IssuedAt, MaxLifetime)
	case w.NotBefore != nil && time.Unix(*w.NotBefore, 0).After(now.Add(leeway)):
		return Claims{}, invalid("not valid before %s", time.Unix(*w.NotBefore, 0).UTC().Format(time.RFC3339))
	case c.Subject == "" || c.ID == "":
		return Claims{}, invalid("sub or jti is missing")
	}
	c.Audience = v.Audience
	return c, nil
}
