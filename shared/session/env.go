package session

import (
	"context"
	"fmt"
	"sync"
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

// ConfigFromEnv reads Config from the environment.
func ConfigFromEnv() (Config, error) {
	c := Config{
		Issuer:     env.String("SESSION_ISSUER", "impo-copetes-login"),
		Audience:   env.String("SESSION_AUDIENCE", "impo-copetes-backend"),
		KeysSecret: env.String("SESSION_KEYS_SECRET", "session-keys"),
		Cookie:     env.String("SESSION_COOKIE", ""),
	}
	var err error
	if c.TTL, err = env.Duration("SESSION_TTL", time.Hour, time.Minute, 12*time.Hour); err != nil {
		return c, err
	}
	if c.Leeway, err = env.Duration("SESSION_LEEWAY", 30*time.Second, 0, MaxLeeway); err != nil {
		return c, err
	}
	def := time.Duration(0) // one process: nothing to wait for
	if env.String("STATE_STORE", "memory") == "firestore" {
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
	Secrets     secrets.Source // where the keys came from, for the function's other secrets
	Store       store.Store    // where revocations live, for the function's other state
	Keys        *secrets.Decoded[*KeySet]
	Issuer      *Issuer
	Verifier    *Verifier
	Revocations Revocations
}

// NewAuthority wires an Authority over a secret source and a store.
func NewAuthority(cfg Config, src secrets.Source, st store.Store, now func() time.Time) *Authority {
	keys := &secrets.Decoded[*KeySet]{Source: src, Name: cfg.KeysSecret, Decode: ParseKeySet}
	rev := NewRevocations(st, cfg.RevocationCache, now)
	return &Authority{
		Config:      cfg,
		Secrets:     src,
		Store:       st,
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

var (
	defaultOnce sync.Once
	defaultAuth *Authority
	defaultErr  error
)

// Default returns the process's Authority, from the environment and the
// process's secret source and store, made at first use.
func Default(ctx context.Context) (*Authority, error) {
	defaultOnce.Do(func() {
		cfg, err := ConfigFromEnv()
		if err != nil {
			defaultErr = err
			return
		}
		src, err := secrets.Default(ctx)
		if err != nil {
			defaultErr = fmt.Errorf("secrets: %w", err)
			return
		}
		st, err := store.Default(ctx)
		if err != nil {
			defaultErr = fmt.Errorf("state store: %w", err)
			return
		}
		defaultAuth = NewAuthority(cfg, src, st, time.Now)
	})
	return defaultAuth, defaultErr
}
