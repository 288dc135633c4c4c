// Package routing sends each pipeline message, once validated, to the
// "valid" or the "invalid" Pub/Sub topic exactly once, however often
// Pub/Sub delivers it.
package routing

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"impo.com.uy/copetes/backend/shared/document"
	"impo.com.uy/copetes/backend/shared/store"
)

// Message is a Pub/Sub message as delivered.
type Message struct {
	ID          string
	Data        []byte
	Attributes  map[string]string
	PublishTime time.Time
}

// Outcome says what Route did with a message.
type Outcome string

// The outcomes.
const (
	Valid     Outcome = "valid"
	Invalid   Outcome = "invalid"
	Duplicate Outcome = "duplicate" // handled before: nothing published
	TooOld    Outcome = "too-old"   // older than MaxAge: dropped
)

// Router validates messages and publishes the outcome. Valid and Invalid
// may be nil: then the outcome is only logged (the local default).
type Router struct {
	Validator  *document.Validator
	Store      store.Store
	Valid      *pubsub.Publisher
	Invalid    *pubsub.Publisher
	MaxAge     time.Duration // older messages are dropped with a WARNING
	HandledTTL time.Duration // how long a handled id is remembered
	Lease      time.Duration // how long one delivery may hold a message
	Now        func() time.Time
}

// Attributes added to what Router publishes.
const (
	AttrValidation = "validation"        // "valid" or "invalid"
	AttrMessageID  = "source_message_id" // the id of the message validated
	AttrErrors     = "error_count"       // invalid only
)

// Route validates m and publishes the outcome once. A nil error means the
// message is done with (published, a duplicate, or dropped as too old):
// ack it. An error is transient (the store or a publish failed, or another
// delivery holds the message): Pub/Sub should deliver it again, and
// nothing was marked handled.
func (r *Router) Route(ctx context.Context, m Message) (Outcome, document.Result, error) {
	now := r.Now()
	log := slog.With("message_id", m.ID)
	if !m.PublishTime.IsZero() && now.Sub(m.PublishTime) > r.MaxAge {
		log.WarnContext(ctx, "message dropped: older than the maximum age",
			"published", m.PublishTime.UTC().Format(time.RFC3339), "max_age", r.MaxAge.String())
		return TooOld, document.Result{}, nil
	}
	if _, done, err := r.Store.Get(ctx, "handled:"+m.ID); err != nil {
		return "", document.Result{}, fmt.Errorf("check whether message %s was handled: %w", m.ID, err)
	} else if done {
		log.InfoContext(ctx, "message already handled: not published again")
		return Duplicate, document.Result{}, nil
	}
	// Two deliveries of one message may run at once on two instances: the
	// lease lets one publish; the other is retried, and by then finds the
	// message handled.
	won, err := r.Store.Claim(ctx, "lease:"+m.ID, store.Entry{Value: 1, Expires: now.Add(r.Lease)})
	if err != nil {
		return "", document.Result{}, fmt.Errorf("lease message %s: %w", m.ID, err)
	}
	if !won {
		return "", document.Result{}, fmt.Errorf("message %s is being handled by another delivery", m.ID)
	}

	res := r.Validator.Validate(m.Data)
	outcome, topic, data := Valid, r.Valid, m.Data
	attrs := maps.Clone(m.Attributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs[AttrMessageID] = m.ID
	if !res.Valid {
		outcome, topic = Invalid, r.Invalid
		attrs[AttrErrors] = strconv.Itoa(len(res.Errors))
		if data, err = document.MarshalReport(m.ID, res); err != nil {
			return "", res, err
		}
	}
	attrs[AttrValidation] = string(outcome)

	published := "none configured"
	if topic != nil {
		id, err := topic.Publish(ctx, &pubsub.Message{Data: data, Attributes: attrs}).Get(ctx)
		if err != nil {
			// Let the retry in at once rather than after the lease.
			if derr := r.Store.Delete(context.WithoutCancel(ctx), "lease:"+m.ID); derr != nil {
				log.WarnContext(ctx, "could not release the message lease", "error", derr.Error())
			}
			return "", res, fmt.Errorf("publish the %s outcome of message %s to %s: %w", outcome, m.ID, topic.String(), err)
		}
		published = topic.String() + " as " + id
	}
	if err := r.Store.Put(ctx, "handled:"+m.ID, store.Entry{Value: 1, Expires: now.Add(r.HandledTTL)}); err != nil {
		// Published already: acking is right. Only a redelivery, which
		// Pub/Sub rarely makes after an ack, could publish it twice.
		log.WarnContext(ctx, "published, but could not record the message as handled", "error", err.Error())
	}
	log.InfoContext(ctx, "document validated", "document_id", res.DocumentID, "outcome", string(outcome),
		"errors", len(res.Errors), "published", published)
	return outcome, res, nil
}

// NewPublisher returns a publisher for topic (an id or a full name) set
// for one message at a time: a function publishes and waits, so batching
// would only add its delay. Timeout bounds the client's own retries.
func NewPublisher(c *pubsub.Client, topic string) *pubsub.Publisher {
	p := c.Publisher(topic)
	p.PublishSettings.DelayThreshold = time.Millisecond
	p.PublishSettings.CountThreshold = 1
	p.PublishSettings.Timeout = 20 * time.Second
	return p
}
