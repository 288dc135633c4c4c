package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Grant is what one session token is issued for.
type Grant struct {
	Subject string   // the account
	Kind    string   // "user" or "service"
	Roles   []string // the account's roles
	// ClientID is the registered application a person's browser logged in
	// through (RFC 9068 §2.2 client_id); "" for a token the account asked
	// for itself (password or client credentials), whose client_id is the
	// account.
	ClientID string
	// ID is the token's jti; "" draws a fresh one. login's code and
	// refresh grants draw it first (NewTokenID) and record it, so that a
	// replayed code or a reused refresh token can revoke this very token.
	ID string
	// SessionID is the token's sid: the login (refresh family) it is
	// issued for, "" for none. Every token of a login carries it, so that
	// ending the login refuses them all (Revocations.RevokeSession).
	SessionID string
}

// NewTokenID returns a fresh token id: 128 random bits, base64url.
func NewTokenID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// IssueFor signs a session token for g, valid for the issuer's TTL.
func (is *Issuer) IssueFor(ctx context.Context, g Grant) (string, Claims, error) {
	ks, err := is.Keys(ctx)
	if err != nil {
		return "", Claims{}, err
	}
	now := is.Now()
	c := Claims{
		Issuer:    is.Issuer,
		Subject:   g.Subject,
		Audience:  is.Audience,
		IssuedAt:  now.Unix(),
		Expiry:    now.Add(is.TTL).Unix(),
		ID:        g.ID,
		ClientID:  g.ClientID,
		Kind:      g.Kind,
		Roles:     g.Roles,
		SessionID: g.SessionID,
	}
	if c.ID == "" {
		c.ID = NewTokenID()
	}
	if c.ClientID == "" {
		c.ClientID = g.Subject
	}
	if c.Roles == nil {
		c.Roles = []string{}
	}
	token, err := ks.sign(ks.signer, TokenType, c)
	if err != nil {
		return "", Claims{}, fmt.Errorf("sign session token: %w", err)
	}
	return token, c, nil
}

// SignEdDSA signs claims, which must encode as a JSON object, as a JWT
// with the set's Ed25519 signing key, header typ when not empty. It is
// login's ID token where the set has no ES256 key: its typ is not
// at+jwt and its aud is a client, so no session verifier takes it.
func (ks *KeySet) SignEdDSA(typ string, claims any) (string, error) {
	// Only IssueFor signs session tokens, with their claims checked, and
	// only IssueDevice device tokens. Verifiers compare typ as a media
	// type (without case, "application/" optional: checkHeader), so each
	// spelling of either is refused, not only ours.
	t := strings.TrimPrefix(strings.ToLower(typ), "application/")
	if t == TokenType || t == DeviceTokenType {
		return "", fmt.Errorf("SignEdDSA: typ %q is a session or device token's", typ)
	}
	return ks.sign(ks.signer, typ, claims)
}

// sign signs claims as a compact JWS with key (its Algorithm and KeyID).
func (ks *KeySet) sign(key jose.JSONWebKey, typ string, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("JWT claims: %w", err)
	}
	if len(payload) == 0 || payload[0] != '{' {
		// RFC 7519 §7.2: a JWT's claims are a JSON object.
		return "", fmt.Errorf("JWT claims: %T encodes as %.20s…, want a JSON object", claims, payload)
	}
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key}, opts)
	if err != nil {
		return "", fmt.Errorf("%s signer: %w", key.Algorithm, err)
	}
	sig, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return sig.CompactSerialize()
}

// EndedAfter reports whether the sessions of subject were ended (see
// EndSessions) at or after since: whether a token issued at since would
// now be refused by its subject's mark. login asks it before renewing a
// refresh family whose person logged in at since.
func (r Revocations) EndedAfter(ctx context.Context, subject string, since time.Time) (bool, error) {
	e, found, err := r.Store.Get(ctx, notBeforeKey(subject))
	if err != nil {
		return false, fmt.Errorf("check ended sessions: %w", err)
	}
	return found && since.Unix() < e.Value, nil
}
