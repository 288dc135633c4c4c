package session

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"

	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/strictjson"
)

// ParsePublicKeySet reads a published JWK Set (login's /jwks) of Ed25519
// public keys. A private key in it is refused: whoever serves it leaks.
func ParsePublicKeySet(data []byte) (PublicKeys, error) {
	if err := strictjson.Check(data); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	keys := PublicKeys{}
	for i, k := range set.Keys {
		pub, ok := k.Key.(ed25519.PublicKey)
		if !ok || k.KeyID == "" {
			return nil, fmt.Errorf("JWKS: key %d is not an Ed25519 public key with a kid", i)
		}
		keys[k.KeyID] = pub
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS: no keys")
	}
	return keys, nil
}

// JWKSFetcher is a secrets.Source whose "secret" is a JWKS URL's body, so
// that the secrets cache (TTL, one fetch for many callers, stale value
// through an outage) serves public keys too. Verifiers that fetch keys
// this way need no access to the signing keys.
type JWKSFetcher struct {
	Client *http.Client
}

// Secret fetches url.
func (f JWKSFetcher) Secret(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", u, err)
	}
	resp, err := f.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w: %v", u, secrets.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS %s: %w: status %s", u, secrets.ErrUnavailable, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, secrets.MaxSize))
}

// CheckJWKSURL accepts https URLs, and http only on loopback (local runs).
func CheckJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("want an absolute URL")
	}
	if u.Scheme == "https" || u.Scheme == "http" && (u.Hostname() == "127.0.0.1" || u.Hostname() == "localhost" || u.Hostname() == "::1") {
		return nil
	}
	return errors.New("want https (http only on localhost)")
}

// jwksKeys returns a Keys function over a cached JWKS URL.
func jwksKeys(u string, ttl, stale time.Duration) func(context.Context) (PublicKeys, error) {
	cache := secrets.NewCache(JWKSFetcher{Client: &http.Client{Timeout: 10 * time.Second}}, ttl, stale)
	d := &secrets.Decoded[PublicKeys]{Source: cache, Name: u, Decode: ParsePublicKeySet}
	return d.Get
}
