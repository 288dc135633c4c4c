package validate

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"impo.com.uy/copetes/backend/shared/document"
	"impo.com.uy/copetes/backend/shared/env"
	"impo.com.uy/copetes/backend/shared/routing"
	"impo.com.uy/copetes/backend/shared/store"
)

// newValidator compiles the embedded schema, or the file named by
// VALIDATE_SCHEMA_FILE.
func newValidator() (*document.Validator, error) {
	var schema []byte
	if path := env.String("VALIDATE_SCHEMA_FILE", ""); path != "" {
		var err error
		if schema, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("VALIDATE_SCHEMA_FILE: %w", err)
		}
	}
	return document.New(schema)
}

// newRouter builds the router from the environment:
//
//	VALIDATE_VALID_TOPIC, VALIDATE_INVALID_TOPIC  topic ids (in GOOGLE_CLOUD_PROJECT)
//	                                              or full names; unset: log only
//	VALIDATE_MAX_EVENT_AGE                        drop older events (24h)
//	VALIDATE_HANDLED_TTL                          remember handled ids (192h)
//	VALIDATE_LEASE                                one delivery's hold on a message (2m)
//
// PUBSUB_EMULATOR_HOST, when set, points the client at the emulator.
func newRouter(ctx context.Context, v *document.Validator, st store.Store) (*routing.Router, error) {
	r := &routing.Router{Validator: v, Store: st, Now: time.Now}
	var err error
	if r.MaxAge, err = env.Duration("VALIDATE_MAX_EVENT_AGE", 24*time.Hour, time.Minute, 31*24*time.Hour); err != nil {
		return nil, err
	}
	if r.HandledTTL, err = env.Duration("VALIDATE_HANDLED_TTL", 8*24*time.Hour, time.Hour, 62*24*time.Hour); err != nil {
		return nil, err
	}
	if r.Lease, err = env.Duration("VALIDATE_LEASE", 2*time.Minute, 10*time.Second, time.Hour); err != nil {
		return nil, err
	}
	validTopic, invalidTopic := env.String("VALIDATE_VALID_TOPIC", ""), env.String("VALIDATE_INVALID_TOPIC", "")
	if validTopic == "" && invalidTopic == "" {
		return r, nil
	}
	if validTopic == "" || invalidTopic == "" {
		return nil, &env.Error{Var: "VALIDATE_VALID_TOPIC", Want: "set both VALIDATE_VALID_TOPIC and VALIDATE_INVALID_TOPIC, or neither"}
	}
	project := env.String("GOOGLE_CLOUD_PROJECT", "")
	if parts := strings.Split(validTopic, "/"); len(parts) == 4 && parts[0] == "projects" {
		project = parts[1]
	}
	if project == "" {
		return nil, &env.Error{Var: "GOOGLE_CLOUD_PROJECT", Want: "set it, or give the topics as projects/P/topics/T"}
	}
	client, err := pubsub.NewClient(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("pubsub client: %w", err)
	}
	r.Valid = routing.NewPublisher(client, validTopic)
	r.Invalid = routing.NewPublisher(client, invalidTopic)
	return r, nil
}
