package store

import (
	"context"
	"time"

	"impo.com.uy/copetes/backend/shared/env"
)

// The kinds of store.
const (
	KindMemory    = "memory"
	KindFirestore = "firestore"
)

// Config says which store holds the shared state.
type Config struct {
	Kind     string // STATE_STORE
	Project  string // GOOGLE_CLOUD_PROJECT
	Database string // FIRESTORE_DATABASE: the function's own state
	// SessionsDatabase holds the revocations, which login writes and every
	// verifier reads (FIRESTORE_SESSIONS_DATABASE; default: Database).
	SessionsDatabase string
	Collection       string        // STATE_COLLECTION
	Timeout          time.Duration // STATE_STORE_TIMEOUT
	BreakerFailures  int           // STATE_STORE_BREAKER_FAILURES (0: no breaker)
	BreakerCooldown  time.Duration // STATE_STORE_BREAKER_COOLDOWN
}

// Shared reports whether the state is seen by every instance, not only by
// this process.
func (c Config) Shared() bool { return c.Kind != KindMemory }

// ConfigFromEnv reads the store's configuration:
//
//	STATE_STORE            memory (default: this process only) | firestore
//	GOOGLE_CLOUD_PROJECT   the Firestore project
//	FIRESTORE_DATABASE     database id of the function's own state ("(default)")
//	FIRESTORE_SESSIONS_DATABASE  database id of the revocations (FIRESTORE_DATABASE)
//	STATE_COLLECTION       collection of the entries ("backend-state")
//	STATE_STORE_TIMEOUT    bound on one operation (2s), or the request's
//	                       deadline when that is sooner
//	STATE_STORE_BREAKER_FAILURES  operations in a row that could not reach
//	                       the store before the others fail fast (5; 0: never)
//	STATE_STORE_BREAKER_COOLDOWN  how long they fail fast before one tries (1s)
//	FIRESTORE_EMULATOR_HOST  honoured by the client
func ConfigFromEnv() (Config, error) {
	c := Config{
		Project:    env.String("GOOGLE_CLOUD_PROJECT", ""),
		Database:   env.String("FIRESTORE_DATABASE", "(default)"),
		Collection: env.String("STATE_COLLECTION", "backend-state"),
	}
	c.SessionsDatabase = env.String("FIRESTORE_SESSIONS_DATABASE", c.Database)
	var err error
	if c.Kind, err = env.OneOf("STATE_STORE", KindMemory, KindMemory, KindFirestore); err != nil {
		return c, err
	}
	if c.Kind == KindFirestore && c.Project == "" {
		return c, &env.Error{Var: "GOOGLE_CLOUD_PROJECT", Want: "set it to the Firestore project when STATE_STORE=firestore"}
	}
	// Two seconds: a healthy Firestore answers in tens of milliseconds, and
	// a request that needs the store should fail well within what its
	// caller waits, not after it.
	if c.Timeout, err = env.Duration("STATE_STORE_TIMEOUT", 2*time.Second, 100*time.Millisecond, time.Minute); err != nil {
		return c, err
	}
	if c.BreakerFailures, err = env.Int("STATE_STORE_BREAKER_FAILURES", 5, 0, 1000); err != nil {
		return c, err
	}
	if c.BreakerCooldown, err = env.Duration("STATE_STORE_BREAKER_COOLDOWN", time.Second, 10*time.Millisecond, time.Minute); err != nil {
		return c, err
	}
	return c, nil
}

// Open returns the stores c describes: the function's own, and the one
// holding revocations (the same store when they are one database, and
// always in memory). Each Firestore database is behind a Breaker of its
// own. The Firestore clients keep ctx for their credentials, so ctx must
// not end with a request.
func Open(ctx context.Context, c Config) (own, sessions Store, err error) {
	if c.Kind == KindMemory {
		m := NewMemory(nil)
		return m, m, nil
	}
	open := func(database string) (Store, error) {
		f, err := NewFirestore(ctx, c.Project, database, c.Collection)
		if err != nil {
			return nil, err
		}
		f.Timeout = c.Timeout
		return NewBreaker(f, c.BreakerFailures, c.BreakerCooldown, nil), nil
	}
	if own, err = open(c.Database); err != nil {
		return nil, nil, err
	}
	if c.SessionsDatabase == c.Database {
		return own, own, nil
	}
	if sessions, err = open(c.SessionsDatabase); err != nil {
		return nil, nil, err
	}
	return own, sessions, nil
}
