package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"impo.com.uy/copetes/backend/shared/secrets"
)

// ParsePublicKeySet reads a published JWK Set (login's /jwks) of Ed25519
// public keys, refusing the whole set if any key is broken. A private key
// in it is refused: whoever serves it leaks.
func ParsePublicKeySet(data []byte) (PublicKeys, error) {
	set, err := readJWKSet(data)
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	keys := PublicKeys{}
	for i, k := range set {
		if k.seed != nil {
			return nil, fmt.Errorf("JWKS: key %d (kid %q) holds a private key (d): a published set must hold public keys only", i, k.kid)
		}
		keys[k.kid] = k.pub
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
