package secrets

import (
	"context"
	"time"

	"impo.com.uy/copetes/backend/shared/env"
)

// The kinds of secret source.
const (
	KindSecretManager = "secretmanager"
	KindDir           = "dir"
)

// DefaultDir is the credentials folder of local runs.
const DefaultDir = "credenciales"

// DirFromEnv names the credentials folder: CREDENTIALS_DIR, or DefaultDir.
func DirFromEnv() string { return env.String("CREDENTIALS_DIR", DefaultDir) }

// DefaultTTL is how long a value read from Secret Manager is reused when
// SECRETS_CACHE_TTL does not say.
const DefaultTTL = 5 * time.Minute

// TTLFromEnv reads SECRETS_CACHE_TTL, def when unset. cmd/admin asks it
// with DefaultTTL for the TTL the deployed login runs with.
func TTLFromEnv(def time.Duration) (time.Duration, error) {
	return env.Duration("SECRETS_CACHE_TTL", def, 0, 24*time.Hour)
}

// Config says where secrets come from and how long they are cached.
type Config struct {
	Kind         string        // SECRETS_SOURCE
	Project      string        // GOOGLE_CLOUD_PROJECT
	EmulatorHost string        // SECRETMANAGER_EMULATOR_HOST
	Dir          string        // CREDENTIALS_DIR
	TTL          time.Duration // SECRETS_CACHE_TTL
	StaleMax     time.Duration // SECRETS_STALE_MAX
}

// ConfigFromEnv reads the secret source's configuration; the one place
// that decides it, for the functions, cmd/local and cmd/admin alike:
//
//	SECRETS_SOURCE               secretmanager | dir (default: secretmanager
//	                             when GOOGLE_CLOUD_PROJECT is set, else dir)
//	GOOGLE_CLOUD_PROJECT         project of the secrets
//	SECRETMANAGER_EMULATOR_HOST  host:port of a local Secret Manager server
//	CREDENTIALS_DIR              folder of the dir source (credenciales)
//	SECRETS_CACHE_TTL            reuse a value this long (5m; dir: 2s)
//	SECRETS_STALE_MAX            serve a value this long past its TTL while
//	                             refreshing fails (1h)
func ConfigFromEnv() (Config, error) {
	c := Config{
		Project:      env.String("GOOGLE_CLOUD_PROJECT", ""),
		EmulatorHost: env.String("SECRETMANAGER_EMULATOR_HOST", ""),
		Dir:          DirFromEnv(),
	}
	def := KindDir
	if c.Project != "" {
		def = KindSecretManager
	}
	var err error
	if c.Kind, err = env.OneOf("SECRETS_SOURCE", def, KindSecretManager, KindDir); err != nil {
		return c, err
	}
	if c.Kind == KindSecretManager && c.Project == "" {
		return c, &env.Error{Var: "GOOGLE_CLOUD_PROJECT", Want: "set it to the project of the secrets when SECRETS_SOURCE=secretmanager"}
	}
	ttl := DefaultTTL
	if c.Kind == KindDir {
		// Files are cheap to read, and an operator who edits one expects
		// the local server to see it at once.
		ttl = 2 * time.Second
	}
	if c.TTL, err = TTLFromEnv(ttl); err != nil {
		return c, err
	}
	if c.StaleMax, err = env.Duration("SECRETS_STALE_MAX", time.Hour, 0, 7*24*time.Hour); err != nil {
		return c, err
	}
	return c, nil
}

// Open returns the cached source c describes. The Secret Manager client
// keeps ctx for its credentials, so ctx must not end with a request; the
// connection itself is made by the first call.
func Open(ctx context.Context, c Config) (Source, error) {
	var src Source = Dir{Path: c.Dir}
	if c.Kind == KindSecretManager {
		sm, err := NewSecretManager(ctx, c.Project, c.EmulatorHost)
		if err != nil {
			return nil, err
		}
		src = sm
	}
	return NewCache(src, c.TTL, c.StaleMax), nil
}
