package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// DeviceTokenType is the typ of a device token: never accepted as a
// session, and a session is never accepted as one.
const DeviceTokenType = "device+jwt"

// DeviceTTL is how long a device stays known after its last login.
const DeviceTTL = 30 * 24 * time.Hour

// deviceClaims are a device token's claims: this device logged in as Sub.
type deviceClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	ID       string `json:"jti"`
}

// deviceAudience keeps device tokens apart from sessions even if a
// verifier ignored typ.
func (is *Issuer) deviceAudience() string { return is.Issuer + "#device" }

// IssueDevice signs a device token for the account sub (OWASP's "device
// cookie"): a client that shows it later proved then that it knew sub's
// password, and an account-wide lock-out set by someone else's guesses
// does not shut it out. It returns the token, its id and its expiry.
func (is *Issuer) IssueDevice(ctx context.Context, sub string) (string, string, time.Time, error) {
	ks, err := is.Keys(ctx)
	if err != nil {
		return "", "", time.Time{}, err
	}
	id := make([]byte, 16)
	rand.Read(id)
	now := is.Now()
	c := deviceClaims{Issuer: is.Issuer, Subject: sub, Audience: is.deviceAudience(), IssuedAt: now.Unix(),
		Expiry: now.Add(DeviceTTL).Unix(), ID: base64.RawURLEncoding.EncodeToString(id)}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: ks.signer},
		(&jose.SignerOptions{}).WithType(DeviceTokenType))
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("device signer: %w", err)
	}
	payload, _ := json.Marshal(c)
	sig, err := signer.Sign(payload)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("sign device token: %w", err)
	}
	token, err := sig.CompactSerialize()
	return token, c.ID, time.Unix(c.Expiry, 0), err
}

// VerifyDevice checks that token is a live device token that is issued
// here for the account sub, and returns its id. Any failure is ErrInvalid
// (or an error reading the keys): the caller then treats the client as
// an unknown device, nothing worse.
func (is *Issuer) VerifyDevice(ctx context.Context, token, sub string) (string, error) {
	if len(token) > MaxTokenSize {
		return "", invalid("device token longer than %d bytes", MaxTokenSize)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return "", invalid("device token: %v", err)
	}
	if typ, _ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string); typ != DeviceTokenType {
		return "", invalid("typ is %q, want %q", typ, DeviceTokenType)
	}
	ks, err := is.Keys(ctx)
	if err != nil {
		return "", err
	}
	pub, ok := ks.PublicKeys()[jws.Signatures[0].Protected.KeyID]
	if !ok {
		return "", invalid("device token: unknown key id")
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return "", invalid("device token: bad signature")
	}
	var c deviceClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", invalid("device token claims: %v", err)
	}
	switch {
	case c.Issuer != is.Issuer || c.Audience != is.deviceAudience():
		return "", invalid("device token from another issuer")
	case c.Subject != sub:
		return "", invalid("device token of another account")
	case !is.Now().Before(time.Unix(c.Expiry, 0)) || c.ID == "":
		return "", invalid("device token expired")
	}
	return c.ID, nil
}
