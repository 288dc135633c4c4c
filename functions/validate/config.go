package validate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
// VALIDATE_SCHEMA_FILE, and names its version: VALIDATE_SCHEMA_VERSION,
// or else the schema's $id and a digest of its bytes (an edit that keeps
// the $id still changes the version).
func newValidator() (*document.Validator, string, error) {
	schema := document.DefaultSchema()
	if path := env.String("VALIDATE_SCHEMA_FILE", ""); path != "" {
		var err error
		if schema, err = os.ReadFile(path); err != nil {
			return nil, "", fmt.Errorf("VALIDATE_SCHEMA_FILE: %w", err)
		}
	}
	v, err := document.New(schema)
	if err != nil {
		return nil, "", err
	}
	version := env.String("VALIDATE_SCHEMA_VERSION", "")
	if len(version) > routing.MaxAttributeValueBytes {
		return nil, "", &env.Error{Var: "VALIDATE_SCHEMA_VERSION", Want: fmt.Sprintf("at most %d bytes: it travels as an attribute", routing.MaxAttributeValueBytes)}
	}
	if version == "" {
		sum := sha256.Sum256(schema)
		version = "sha256:" + hex.EncodeToString(sum[:8])
		var meta struct {
			ID string `json:"$id"`
		}
		if json.Unmarshal(schema, &meta) == nil && meta.ID != "" && len(meta.ID)+1+len(version) <= routing.MaxAttributeValueBytes {
			version = meta.ID + "@" + version
		}
	}
	return v, version, nil
}

// DefaultMaxEventAge is Pub/Sub's longest retention (31 days): by default
// no message Pub/Sub can still deliver, after an outage or a seek, is too
// old to validate.
const DefaultMaxEventAge = 31 * 24 * time.Hour

// newRouter builds the router from the environment:
//
//	VALIDATE_VALID_TOPIC, VALIDATE_INVALID_TOPIC  topic ids (in GOOGLE_CLOUD_PROJECT)
//	                                              or full names; unset: log only
//	VALIDATE_TRIGGER_TOPIC                        the topic that triggers Validate:
//	                                              neither output may be it
//	VALIDATE_MAX_EVENT_AGE                        older events go to the invalid topic
//	                                              unvalidated (744h, 31 days)
//	VALIDATE_HANDLED_TTL                          remember outcomes (192h)
//	VALIDATE_LEASE                                one delivery's hold on a message (2m)
//
// PUBSUB_EMULATOR_HOST, when set, points the client at the emulator.
func newRouter(ctx context.Context, v *document.Validator, schemaVersion string, st store.Store) (*routing.Router, error) {
	r := &routing.Router{Validator: v, Store: st, SchemaVersion: schemaVersion, Now: time.Now}
	var err error
	if r.MaxAge, err = env.Duration("VALIDATE_MAX_EVENT_AGE", DefaultMaxEventAge, time.Minute, 366*24*time.Hour); err != nil {
		return nil, err
	}
	if r.HandledTTL, err = env.Duration("VALIDATE_HANDLED_TTL", 8*24*time.Hour, time.Hour, 62*24*time.Hour); err != nil {
		return nil, err
	}
	// A lease shorter than a publish could end while its delivery still
	// publishes, and let a second delivery publish too.
	if r.Lease, err = env.Duration("VALIDATE_LEASE", 2*time.Minute, routing.PublishTimeout+10*time.Second, time.Hour); err != nil {
		return nil, err
	}
	validTopic, invalidTopic := env.String("VALIDATE_VALID_TOPIC", ""), env.String("VALIDATE_INVALID_TOPIC", "")
	triggerTopic := env.String("VALIDATE_TRIGGER_TOPIC", "")
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
	validTopic, invalidTopic = routing.TopicName(project, validTopic), routing.TopicName(project, invalidTopic)
	if triggerTopic != "" {
		triggerTopic = routing.TopicName(project, triggerTopic)
		if triggerTopic == validTopic || triggerTopic == invalidTopic {
			return nil, &env.Error{Var: "VALIDATE_TRIGGER_TOPIC", Want: "a topic other than VALIDATE_VALID_TOPIC and VALIDATE_INVALID_TOPIC: " +
				"validate would publish to the topic that triggers it, and every output would come back as input (a self-loop)"}
		}
	}
	client, err := pubsub.NewClient(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("pubsub client: %w", err)
	}
	r.Valid = routing.NewPublisher(client, validTopic)
	r.Invalid = routing.NewPublisher(client, invalidTopic)
	return r, nil
}
