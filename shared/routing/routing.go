// Package routing sends each pipeline message, once validated, to the
// "valid" or the "invalid" Pub/Sub topic: at least once, under a
// deterministic deduplication key, never in a form Pub/Sub would refuse.
//
// The guarantee, for a message id: every delivery that returns nil has
// published the message's outcome, or found it published before. A second
// publication happens only when a delivery stops after Pub/Sub accepted
// its publish and before the outcome was recorded (a crash, an instance
// killed, a publish whose answer never came): the next delivery then
// publishes the same outcome again, to the same topic, with the same data,
// attributes and ordering key, source_message_id among them.
package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
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
	OrderingKey string
	PublishTime time.Time
	// Topic is the topic the message was published to
	// ("projects/P/topics/T"), when the event says: Route refuses a
	// message from one of its own output topics.
	Topic string
	// Unreadable, when set, says why the event could not be read as a
	// Pub/Sub message; Data is then the event's raw data, and the message
	// goes to the invalid topic as it is.
	Unreadable string
}

// Outcome says what Route did with a message.
type Outcome string

// The outcomes.
const (
	Valid     Outcome = "valid"     // published to the valid topic
	Invalid   Outcome = "invalid"   // a report published to the invalid topic
	Duplicate Outcome = "duplicate" // published before: nothing published now
)

// Router validates messages and publishes the outcome. Valid and Invalid
// may be nil: then the outcome is only logged (the local default).
type Router struct {
	Validator *document.Validator
	Store     store.Store
	Valid     *pubsub.Publisher
	Invalid   *pubsub.Publisher
	// SchemaVersion names the schema that judged a message; every output
	// carries it as the schema_version attribute. Empty: not set.
	SchemaVersion string
	// MaxAge: a message published longer ago goes to the invalid topic
	// without being validated.
	MaxAge     time.Duration
	HandledTTL time.Duration // how long a message's outcome is remembered
	// Lease is how long one delivery may hold a message; it must outlast
	// a publish and the store writes around it (see Route).
	Lease time.Duration
	Now   func() time.Time
}

// Attributes that Router sets. An incoming message's own values of these
// are dropped, never passed on: a document fed in again must not carry the
// verdict of an earlier run.
const (
	AttrValidation = "validation"        // "valid" or "invalid"
	AttrMessageID  = "source_message_id" // the deduplication key: the id of the message validated
	AttrErrors     = "error_count"       // invalid only: errors found in all
	AttrSchema     = "schema_version"    // Router.SchemaVersion
	AttrReason     = "invalid_reason"    // invalid only: a Reason
)

var ownAttributes = []string{AttrValidation, AttrMessageID, AttrErrors, AttrSchema, AttrReason}

// decision is what a delivery decided to publish for a message. It is
// recorded before publishing (the intent), so that a delivery after a
// crash publishes the same outcome even if the clock or the message's
// age now says otherwise.
type decision int64

const (
	decideValid decision = iota + 1
	decideInvalid
	decideTooOld
	decideUnreadable
)

// The state of message id: "intent:"+id holds the decision recorded
// before publishing, "handled:"+id the outcome once published, and
// "lease:"+id the delivery at work. The intent has a key of its own, not
// a value of handled's: an instance of an older version, which knows only
// handled, must take an intent for nothing, and publish, rather than for
// a publication, and ack a message never published.
func handledKey(id string) string { return "handled:" + id }
func intentKey(id string) string  { return "intent:" + id }
func leaseKey(id string) string   { return "lease:" + id }

// ErrSelfLoop is returned for a message that came from one of the
// router's own output topics: publishing it would feed it back in.
var ErrSelfLoop = errors.New("self-loop")

// Route validates m and publishes its outcome. A nil error means the
// message is done with, published now or before: ack it. An error means a
// retry can help (the store or a publish failed, another delivery holds
// the message, or the message comes from an output topic and the
// configuration must change): Pub/Sub should deliver it again.
//
// The steps, and what a crash between them does:
//  1. read the message's state: published means Duplicate;
//  2. take the lease, so that concurrent deliveries do not both publish;
//  3. decide the outcome, or reuse the one an earlier delivery recorded,
//     and record it (the intent);
//  4. publish;
//  5. record the outcome as published.
//
// A crash before 4 publishes nothing; after 5, nothing again. Only a crash
// between 4 and 5, one store write long, leads the next delivery (once
// the lease has run out) to publish again, the same message.
func (r *Router) Route(ctx context.Context, m Message) (Outcome, error) {
	log := slog.With("message_id", m.ID)
	if err := r.checkLoop(m.Topic); err != nil {
		log.ErrorContext(ctx, "message refused: it comes from an output topic of validate", "topic", m.Topic)
		return "", err
	}
	now := r.Now()
	state, found, err := r.Store.GetMany(ctx, handledKey(m.ID), intentKey(m.ID))
	if err != nil {
		return "", fmt.Errorf("read the state of message %s: %w", m.ID, err)
	}
	if found[0] {
		log.InfoContext(ctx, "message already handled: not published again")
		return Duplicate, nil
	}
	won, err := r.Store.Claim(ctx, leaseKey(m.ID), store.Entry{Value: 1, Expires: now.Add(r.Lease)})
	if err != nil {
		return "", fmt.Errorf("lease message %s: %w", m.ID, err)
	}
	if !won {
		return "", fmt.Errorf("message %s is being handled by another delivery", m.ID)
	}
	// Nothing starts once the lease is over: another delivery may have
	// taken the message by then.
	ctx, cancel := context.WithTimeout(ctx, r.Lease)
	defer cancel()

	var res *document.Result
	var valid *pubsub.Message
	d, reused := decision(state[1].Value), found[1]
	if !reused {
		d, res, valid = r.decide(m, now)
		if err := r.Store.Put(ctx, intentKey(m.ID), store.Entry{Value: int64(d), Expires: now.Add(r.HandledTTL)}); err != nil {
			r.release(ctx, m.ID, log)
			return "", fmt.Errorf("record the decision on message %s: %w", m.ID, err)
		}
	}
	out, err := r.build(m, d, res, valid)
	if err != nil {
		r.release(ctx, m.ID, log)
		return "", err
	}

	published := "none configured"
	if out.topic != nil {
		id, err := out.topic.Publish(ctx, out.msg).Get(ctx)
		if err != nil {
			// With ordering on, a failure pauses the key until resumed;
			// the retry must be able to publish it.
			out.topic.ResumePublish(out.msg.OrderingKey)
			r.release(ctx, m.ID, log)
			return "", fmt.Errorf("publish the %s outcome of message %s to %s: %w", out.outcome, m.ID, out.topic.String(), err)
		}
		published = out.topic.String() + " as " + id
	}
	// The crash window closes here. The write outlives a cancelled
	// request: the message is published, and recording it is what keeps
	// the next delivery from publishing it again.
	done, cancelDone := context.WithTimeout(context.WithoutCancel(ctx), r.Lease)
	defer cancelDone()
	if err := r.Store.Put(done, handledKey(m.ID), store.Entry{Value: int64(d), Expires: now.Add(r.HandledTTL)}); err != nil {
		// Published already: acking is right. Only a redelivery, which
		// Pub/Sub rarely makes after an ack, could publish it twice.
		log.WarnContext(ctx, "published, but could not record the message as handled", "error", err.Error())
	}
	log.InfoContext(ctx, "document validated", "document_id", out.documentID, "outcome", string(out.outcome),
		"errors", out.errors, "reason", string(out.reason), "published", published, "decided_earlier", reused)
	return out.outcome, nil
}

// release lets the next delivery in at once rather than after the lease.
func (r *Router) release(ctx context.Context, id string, log *slog.Logger) {
	if err := r.Store.Delete(context.WithoutCancel(ctx), leaseKey(id)); err != nil {
		log.WarnContext(ctx, "could not release the message lease", "error", err.Error())
	}
}

// checkLoop refuses a message from an output topic.
func (r *Router) checkLoop(source string) error {
	if source == "" {
		return nil
	}
	for _, p := range []*pubsub.Publisher{r.Valid, r.Invalid} {
		if p != nil && p.String() == source {
			return fmt.Errorf("%w: the message comes from %s, where validate publishes; "+
				"trigger validate from the pipeline's topic, not from one of its outputs", ErrSelfLoop, source)
		}
	}
	return nil
}

// decide judges m: too old, unreadable, valid (and small enough to carry
// as it is) or invalid. It returns the validation result when it made
// one, and for a valid m the message that carries it, checked to fit.
func (r *Router) decide(m Message, now time.Time) (decision, *document.Result, *pubsub.Message) {
	switch {
	case m.Unreadable != "":
		return decideUnreadable, nil, nil
	case r.tooOld(m, now):
		return decideTooOld, nil, nil
	}
	res := r.validate(m)
	if res.Valid && len(m.Data) <= MaxDocumentBytes {
		if msg := r.validMessage(m); checkFits(topicName(r.Valid), msg) == nil {
			return decideValid, &res, msg
		}
	}
	return decideInvalid, &res, nil
}

func (r *Router) tooOld(m Message, now time.Time) bool {
	return !m.PublishTime.IsZero() && now.Sub(m.PublishTime) > r.MaxAge
}

// validate checks m's document as of the day it was published, so that
// any delivery of the message, however late, judges it alike: "in the
// future" means after its publication.
func (r *Router) validate(m Message) document.Result {
	v := *r.Validator
	if at := m.PublishTime; !at.IsZero() {
		v.Today = func() time.Time { return at }
	}
	return v.Validate(m.Data)
}

// output is one message to publish and what to log about it.
type output struct {
	outcome    Outcome
	reason     Reason
	topic      *pubsub.Publisher
	msg        *pubsub.Message
	documentID string
	errors     int
}

// build makes the message that carries decision d on m (valid, when
// decide made it now, is the one for the valid topic). It depends only on
// m, d and the configuration: a delivery after a crash builds the same.
func (r *Router) build(m Message, d decision, res *document.Result, valid *pubsub.Message) (output, error) {
	if d == decideValid {
		msg := valid
		if msg == nil {
			msg = r.validMessage(m)
		}
		if valid != nil || checkFits(topicName(r.Valid), msg) == nil && len(m.Data) <= MaxDocumentBytes {
			var id string
			if res != nil {
				id = res.DocumentID
			}
			return output{outcome: Valid, topic: r.Valid, msg: msg, documentID: id}, nil
		}
		d = decideInvalid // the topics changed since the decision, and it no longer fits
	}
	rep := Report{MessageID: m.ID, SchemaVersion: r.SchemaVersion, Original: Original{
		MessageID: m.ID, PublishTime: m.PublishTime, Topic: m.Topic, OrderingKey: m.OrderingKey, Attributes: m.Attributes,
	}}
	switch d {
	case decideTooOld:
		rep.Reason = ReasonTooOld
		rep.Detail = fmt.Sprintf("published at %s, longer ago than the maximum age of %s (VALIDATE_MAX_EVENT_AGE): not validated; "+
			"publish the original again to have it validated", publishedAt(m.PublishTime), r.MaxAge)
		rep.Errors, rep.ErrorCount = []document.FieldError{{Path: "", Message: "is older than the maximum age"}}, 1
	case decideUnreadable:
		rep.Reason = ReasonUnreadable
		rep.Detail = clip("the event's data is not a Pub/Sub message: "+m.Unreadable, MaxErrorFieldBytes)
		rep.Errors, rep.ErrorCount = []document.FieldError{{Path: "", Message: "is not a Pub/Sub message"}}, 1
	default:
		if res == nil {
			v := r.validate(m)
			res = &v
		}
		rep.DocumentID = clip(res.DocumentID, MaxErrorFieldBytes)
		rep.Errors, rep.ErrorCount = ReportErrors(*res)
		rep.Reason, rep.Detail = ReasonInvalid, fmt.Sprintf("the document breaks %d rule(s)", rep.ErrorCount)
		if problem := r.sizeProblem(m); problem != "" {
			// Not an error of the document's content, but one that keeps
			// it off the valid topic: it goes first, at the root.
			rep.Errors = append([]document.FieldError{{Path: "", Message: problem}}, rep.Errors...)
			rep.ErrorCount++
			if res.Valid {
				rep.Reason = ReasonTooLarge
				rep.Detail = "the document is valid, but cannot be carried to the valid topic: it " + problem
			}
		}
		if len(rep.Errors) > MaxReportErrors {
			rep.Errors = rep.Errors[:MaxReportErrors]
		}
	}
	rep.ErrorsOmitted = rep.ErrorCount - len(rep.Errors)
	data, err := marshalReport(rep, m.Data)
	if err != nil {
		return output{}, err
	}
	attrs := r.attributes(m, map[string]string{
		AttrValidation: string(Invalid), AttrErrors: strconv.Itoa(rep.ErrorCount), AttrReason: string(rep.Reason),
	})
	msg := &pubsub.Message{Data: data, Attributes: attrs, OrderingKey: m.OrderingKey}
	if checkFits(topicName(r.Invalid), msg) != nil {
		// The original attributes crowd the report out; they travel in
		// the report itself.
		msg.Attributes = r.attributes(Message{ID: m.ID}, map[string]string{
			AttrValidation: string(Invalid), AttrErrors: strconv.Itoa(rep.ErrorCount), AttrReason: string(rep.Reason),
		})
		if err := checkFits(topicName(r.Invalid), msg); err != nil {
			return output{}, fmt.Errorf("the report of message %s cannot be published: %w", m.ID, err)
		}
	}
	return output{outcome: Invalid, reason: rep.Reason, topic: r.Invalid, msg: msg, documentID: rep.DocumentID, errors: rep.ErrorCount}, nil
}

// sizeProblem says why m's document cannot go to the valid topic as it
// is, or "" when it can.
func (r *Router) sizeProblem(m Message) string {
	if len(m.Data) > MaxDocumentBytes {
		return fmt.Sprintf("is %d bytes; the pipeline carries documents of at most %d", len(m.Data), MaxDocumentBytes)
	}
	if err := checkFits(topicName(r.Valid), r.validMessage(m)); err != nil {
		return "with its attributes and validation's, " + err.Error()
	}
	return ""
}

// validMessage is m as the valid topic receives it: the document
// unchanged, the original attributes and ordering key, and validation's
// attributes.
func (r *Router) validMessage(m Message) *pubsub.Message {
	return &pubsub.Message{
		Data:        m.Data,
		Attributes:  r.attributes(m, map[string]string{AttrValidation: string(Valid)}),
		OrderingKey: m.OrderingKey,
	}
}

// attributes returns m's attributes without any of validation's own,
// then set: own, the source message id and the schema version.
func (r *Router) attributes(m Message, own map[string]string) map[string]string {
	attrs := maps.Clone(m.Attributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	for _, k := range ownAttributes {
		delete(attrs, k)
	}
	maps.Copy(attrs, own)
	attrs[AttrMessageID] = m.ID
	if r.SchemaVersion != "" {
		attrs[AttrSchema] = r.SchemaVersion
	}
	return attrs
}

func topicName(p *pubsub.Publisher) string {
	if p == nil {
		return ""
	}
	return p.String()
}

// TopicName returns the full name of topic, given as an id (in project)
// or as a full name already.
func TopicName(project, topic string) string {
	if strings.HasPrefix(topic, "projects/") {
		return topic
	}
	return "projects/" + project + "/topics/" + topic
}

// SourceTopic returns the topic named by a Pub/Sub CloudEvent's source
// ("//pubsub.googleapis.com/projects/P/topics/T"), or "" when it names
// none.
func SourceTopic(source string) string {
	name, ok := strings.CutPrefix(source, "//pubsub.googleapis.com/")
	if parts := strings.Split(name, "/"); !ok || len(parts) != 4 || parts[0] != "projects" || parts[2] != "topics" || parts[1] == "" || parts[3] == "" {
		return ""
	}
	return name
}

// NewPublisher returns a publisher for topic (an id or a full name) set
// for one message at a time, with ordering keys kept: a function
// publishes and waits, so batching would only add its delay. Timeout
// bounds the client's own retries; it must stay well inside the lease.
func NewPublisher(c *pubsub.Client, topic string) *pubsub.Publisher {
	p := c.Publisher(topic)
	p.EnableMessageOrdering = true
	p.PublishSettings.DelayThreshold = time.Millisecond
	p.PublishSettings.CountThreshold = 1
	p.PublishSettings.Timeout = PublishTimeout
	return p
}

// PublishTimeout bounds one publish, the client's retries included.
const PublishTimeout = 20 * time.Second
