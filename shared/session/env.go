package session

import (
	"context"
	"time"

	"impo.com.uy/copetes/backend/shared/env"
	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/store"
)

// Config is the session configuration every function shares.
type Config struct {
	Issuer     string        // SESSION_ISSUER
	Audience   string        // SESSION_AUDIENCE
	TTL        time.Duration // SESSION_TTL, at most 12h
	Leeway     time.Duration // SESSION_LEEWAY, at most 60s
	KeysSecret string        // SESSION_KEYS_SECRET
	Cookie     string        // SESSION_COOKIE: cookie name, "" for none
	// RevocationCache is how long "not revoked" is remembered per process
	// (REVOCATION_CACHE_TTL; 10s with Firestore, 0 in memory).
	RevocationCache time.Duration
	// JWKSURL, when set (SESSION_JWKS_URL), is where verifiers get the
	// public keys (login's /jwks), instead of the signing-key secret.
	JWKSURL string
	JWKSTTL time.Duration // SESSION_JWKS_TTL
}

// DefaultKeysSecret is the id of the signing-key secret.
const DefaultKeysSecret = "session-keys"

// KeysSecretFromEnv names the signing-key secret: SESSION_KEYS_SECRET, or
// DefaultKeysSecret. login, cmd/local and cmd/admin all ask here.
func KeysSecretFromEnv() string { return env.String("SESSION_KEYS_SECRET", DefaultKeysSecret) }

// ConfigFromEnv reads Config from the environment. sharedStore says that
// revocations live in a store every instance sees, where a per-process
// "not revoked" cache is worth bounding (see REVOCATION_CACHE_TTL).
func ConfigFromEnv(sharedStore bool) (Config, error) {
	c := Config{
		Issuer:     env.String("SESSION_ISSUER", "impo-copetes-login"),
		Audience:   env.String("SESSION_AUDIENCE", "impo-copetes-backend"),
		KeysSecret: KeysSecretFromEnv(),
		Cookie:     env.String("SESSION_COOKIE", ""),
	}
	var err error
	if c.TTL, err = env.Duration("SESSION_TTL", time.Hour, time.Minute, MaxLifetime); err != nil {
		return c, err
	}
	if c.Leeway, err = env.Duration("SESSION_LEEWAY", 30*time.Second, 0, MaxLeeway); err != nil {
		return c, err
	}
	def := time.Duration(0) // one process: nothing to wait for
	if sharedStore {
		def = 10 * time.Second
	}
	if c.RevocationCache, err = env.Duration("REVOCATION_CACHE_TTL", def, 0, 5*time.Minute); err != nil {
		return c, err
	}
	if c.JWKSURL = env.String("SESSION_JWKS_URL", ""); c.JWKSURL != "" {
		if err := CheckJWKSURL(c.JWKSURL); err != nil {
			return c, &env.Error{Var: "SESSION_JWKS_URL", Want: err.Error()}
		}
	}
	if c.JWKSTTL, err = env.Duration("SESSION_JWKS_TTL", 5*time.Minute, time.Second, time.Hour); err != nil {
		return c, err
	}
	return c, nil
}

// Authority bundles what functions need to issue, verify and revoke
// session tokens in one process.
type Authority struct {
	Config      Config
	Keys        *secrets.Decoded[*KeySet]
	Issuer      *Issuer
	Verifier    *Verifier
	Revocations Revocations
}

// NewAuthority wires an Authority: the signing keys come from src, the
// revocations live in st.
func NewAuthority(cfg Config, src secrets.Source, st store.Store, now func() time.Time) *Authority {
	keys := &secrets.Decoded[*KeySet]{Source: src, Name: cfg.KeysSecret, Decode: ParseKeySet}
	rev := NewRevocations(st, cfg.RevocationCache, now)
	return &Authority{
		Config:      cfg,
		Keys:        keys,
		Revocations: rev,
		Issuer: &Issuer{
			Keys: keys.Get, Issuer: cfg.Issuer, Audience: cfg.Audience, TTL: cfg.TTL, Now: now,
		},
		Verifier: &Verifier{
			Keys:   verificationKeys(cfg, keys),
			Issuer: cfg.Issuer, Audience: cfg.Audience, Leeway: cfg.Leeway, Revocations: rev, Now: now,
		},
	}
}

// FromEnv reads the session configuration and wires the session
// authority (login) over the process's secrets and the revocations' store.
func FromEnv(src secrets.Source, revocations store.Store, sharedStore bool) (*Authority, error) {
	cfg, err := ConfigFromEnv(sharedStore)
	if err != nil {
		return nil, err
	}
	return NewAuthority(cfg, src, revocations, time.Now), nil
}

// VerifierFromEnv wires an Authority for a function that only verifies
// sessions (gettoken, validate). Deployed, it must read login's published
// JWKS: a verifier that held the signing keys would hand them to whoever
// controls it (and, through gettoken, to any role allowed to read
// secrets), so it refuses to start without SESSION_JWKS_URL.
func VerifierFromEnv(src secrets.Source, revocations store.Store, sharedStore bool) (*Authority, error) {
	cfg, err := ConfigFromEnv(sharedStore)
	if err != nil {
		return nil, err
	}
	if err := checkVerifierOnly(cfg, env.Deployed()); err != nil {
		return nil, err
	}
	return NewAuthority(cfg, src, revocations, time.Now), nil
}

func checkVerifierOnly(cfg Config, deployed bool) error {
	if deployed && cfg.JWKSURL == "" {
		return &env.Error{Var: "SESSION_JWKS_URL", Want: "set it to login's /jwks: a deployed verifier reads the public keys, never the signing-key secret " + cfg.KeysSecret}
	}
	return nil
}

// verificationKeys reads the public keys from the published JWKS when
// SESSION_JWKS_URL is set, else from the signing-key secret.
func verificationKeys(cfg Config, keys *secrets.Decoded[*KeySet]) func(context.Context) (PublicKeys, error) {
	if cfg.JWKSURL != "" {
		return jwksKeys(cfg.JWKSURL, cfg.JWKSTTL, time.Hour)
	}
	return func(ctx context.Context) (PublicKeys, error) {
		ks, err := keys.Get(ctx)
		if err != nil {
			return nil, err
		}
		return ks.PublicKeys(), nil
	}
}
