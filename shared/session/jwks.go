package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"

	"impo.com.uy/copetes/backend/shared/secrets"
)

// ParsePublicKeySet reads a published JWK Set (login's /jwks) and returns
// the keys that verify session tokens: its Ed25519 keys. Its P-256 keys
// (ES256, for ID tokens) are checked like the rest but left out, so that
// no session verifier ever holds a key of another algorithm. The whole
// set is refused if any key is broken, or if none is Ed25519 (every
// session token would then be refused). A private key in it is refused:
// whoever serves it leaks.
func ParsePublicKeySet(data []byte) (PublicKeys, error) {
	set, err := readJWKSet(data)
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	keys := PublicKeys{}
	for i, k := range set {
		if k.private() {
			return nil, fmt.Errorf("JWKS: key %d (kid %q) holds a private key (d): a published set must hold public keys only", i, k.kid)
		}
		if k.alg == jose.EdDSA {
			keys[k.kid] = k.ed
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS: no Ed25519 key: nothing in it verifies a session token")
	}
	return keys, nil
}

// JWKSFetcher is a secrets.Source whose "secret" is a JWKS URL's body, so
// that the secrets cache (TTL, one fetch for many callers, stale value
// through an outage) serves public keys too. Verifiers that fetch keys
// this way need no access to the signing keys.
type JWKSFetcher struct {
	// Client makes the request; its Timeout bounds a fetch that hangs.
	Client *http.Client
}

// Secret fetches url and returns its body only if it is a usable public
// key set. Checking here, before the cache keeps the body, makes a 200
// whose body is not a key set a failed refresh like a 500 or a timeout:
// the last good set keeps serving, instead of the bad body replacing it
// and failing every verification for a whole TTL.
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
	body, err := io.ReadAll(io.LimitReader(resp.Body, secrets.MaxSize))
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w: reading the body: %v", u, secrets.ErrUnavailable, err)
	}
	if _, err := ParsePublicKeySet(body); err != nil {
		// Malformed, not unavailable: a URL that answers 200 with something
		// else is most likely SESSION_JWKS_URL naming the wrong page.
		return nil, fmt.Errorf("JWKS %s: %w: %w", u, secrets.ErrMalformed, err)
	}
	return body, nil
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

// jwksFetchTimeout bounds one JWKS request, so that a login that hangs
// ends as a failed refresh (the last good set keeps serving) instead of
// holding the verifications that wait for it.
const jwksFetchTimeout = 10 * time.Second

// JWKSMaxAge is how long login lets HTTP caches keep its /jwks (the
// max-age of its Cache-Control). A verifier behind such a cache, or one
// that honours it, sees a key set up to this much older than login's own:
// key rotation waits for it too (cmd/admin keys promote).
const JWKSMaxAge = 5 * time.Minute

// jwksKeys returns a Keys function over a cached JWKS URL, with the
// secrets cache's rules: a set is reused for ttl and renewed in the
// background ahead of it; while refreshes fail the last good set serves
// at once, with a WARNING per failed round, until it is stale past its
// ttl; then verification fails closed. No verification waits for login
// while a set it may use is cached.
func jwksKeys(u string, ttl, stale time.Duration) func(context.Context) (PublicKeys, error) {
	_, keys := jwksSource{URL: u, Client: &http.Client{Timeout: jwksFetchTimeout}, TTL: ttl, Stale: stale, Now: time.Now}.build()
	return keys
}

// jwksSource is what jwksKeys wires, with the client, the clock and the
// fetcher a test replaces.
type jwksSource struct {
	URL        string
	Client     *http.Client
	TTL, Stale time.Duration
	Now        func() time.Time
	// Fetcher reads the URL; nil means JWKSFetcher{Client}.
	Fetcher secrets.Source
}

func (s jwksSource) keys() func(context.Context) (PublicKeys, error) {
	_, keys := s.build()
	return keys
}

// build returns the cache of the set's bytes and the Keys function that
// decodes them.
func (s jwksSource) build() (*secrets.Cache, func(context.Context) (PublicKeys, error)) {
	fetch := s.Fetcher
	if fetch == nil {
		fetch = JWKSFetcher{Client: s.Client}
	}
	cache := secrets.NewCache(fetch, s.TTL, s.Stale)
	cache.SetClock(s.Now)
	d := &secrets.Decoded[PublicKeys]{Source: cache, Name: s.URL, Decode: ParsePublicKeySet}
	return cache, d.Get
}
