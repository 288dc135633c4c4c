package store

import (
	"context"
	"sync"
	"time"

	"impo.com.uy/copetes/backend/shared/env"
)

var (
	defaultOnce  sync.Once
	defaultStore Store
	defaultErr   error
)

// Default returns the process's store, chosen at first use and shared by
// every function in the process:
//
//	STATE_STORE            memory (default: this process only) | firestore
//	GOOGLE_CLOUD_PROJECT   the Firestore project
//	FIRESTORE_DATABASE     database id ("(default)")
//	STATE_COLLECTION       collection of the entries ("backend-state")
//	STATE_STORE_TIMEOUT    bound on one operation (5s)
//	FIRESTORE_EMULATOR_HOST  honoured by the client
func Default(ctx context.Context) (Store, error) {
	defaultOnce.Do(func() { defaultStore, defaultErr = fromEnv(ctx) })
	return defaultStore, defaultErr
}

func fromEnv(ctx context.Context) (Store, error) {
	kind, err := env.OneOf("STATE_STORE", "memory", "memory", "firestore")
	if err != nil {
		return nil, err
	}
	if kind == "memory" {
		return NewMemory(nil), nil
	}
	project := env.String("GOOGLE_CLOUD_PROJECT", "")
	if project == "" {
		return nil, &env.Error{Var: "GOOGLE_CLOUD_PROJECT", Want: "set it to the Firestore project when STATE_STORE=firestore"}
	}
	timeout, err := env.Duration("STATE_STORE_TIMEOUT", 5*time.Second, 100*time.Millisecond, time.Minute)
	if err != nil {
		return nil, err
	}
	f, err := NewFirestore(context.WithoutCancel(ctx), project,
		env.String("FIRESTORE_DATABASE", "(default)"), env.String("STATE_COLLECTION", "backend-state"))
	if err != nil {
		return nil, err
	}
	f.Timeout = timeout
	return f, nil
}
