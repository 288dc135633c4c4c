package secrets

import (
	"context"
	"sync"
	"time"

	"impo.com.uy/copetes/backend/shared/env"
)

var (
	defaultOnce sync.Once
	defaultSrc  Source
	defaultErr  error
)

// Default returns the process's secret source, configured from the
// environment at first use and then shared by every function in the
// process:
//
//	SECRETS_SOURCE               secretmanager | dir (default: secretmanager
//	                             when GOOGLE_CLOUD_PROJECT is set, else dir)
//	GOOGLE_CLOUD_PROJECT         project of the secrets
//	SECRETMANAGER_EMULATOR_HOST  host:port of a local Secret Manager server
//	CREDENTIALS_DIR              folder of the dir source (credenciales)
//	SECRETS_CACHE_TTL            reuse a value this long (5m; dir: 2s)
//	SECRETS_STALE_MAX            serve a value this long past its TTL while
//	                             refreshing fails (1h)
func Default(ctx context.Context) (Source, error) {
	defaultOnce.Do(func() { defaultSrc, defaultErr = fromEnv(ctx) })
	return defaultSrc, defaultErr
}

func fromEnv(ctx context.Context) (Source, error) {
	project := env.String("GOOGLE_CLOUD_PROJECT", "")
	def := "dir"
	if project != "" {
		def = "secretmanager"
	}
	kind, err := env.OneOf("SECRETS_SOURCE", def, "secretmanager", "dir")
	if err != nil {
		return nil, err
	}
	var src Source
	ttl := 5 * time.Minute
	if kind == "dir" {
		// Files are cheap to read, and an operator who edits one expects
		// the local server to see it at once.
		ttl = 2 * time.Second
		src = Dir{Path: env.String("CREDENTIALS_DIR", "credenciales")}
	} else {
		if project == "" {
			return nil, &env.Error{Var: "GOOGLE_CLOUD_PROJECT", Want: "set it to the project of the secrets when SECRETS_SOURCE=secretmanager"}
		}
		// The client is created without blocking; the connection is made
		// by the first call.
		sm, err := NewSecretManager(context.WithoutCancel(ctx), project, env.String("SECRETMANAGER_EMULATOR_HOST", ""))
		if err != nil {
			return nil, err
		}
		src = sm
	}
	if ttl, err = env.Duration("SECRETS_CACHE_TTL", ttl, 0, 24*time.Hour); err != nil {
		return nil, err
	}
	stale, err := env.Duration("SECRETS_STALE_MAX", time.Hour, 0, 7*24*time.Hour)
	if err != nil {
		return nil, err
	}
	return NewCache(src, ttl, stale), nil
}
