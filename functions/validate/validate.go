// Package validate checks the pipeline's documents: the CloudEvent entry
// point Validate routes each Pub/Sub message to the "valid" or "invalid"
// topic; the HTTP entry point ValidateHTTP answers the same check to a
// caller.
package validate

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"impo.com.uy/copetes/backend/shared/bearer"
	"impo.com.uy/copetes/backend/shared/document"
	"impo.com.uy/copetes/backend/shared/entrypoint"
	"impo.com.uy/copetes/backend/shared/httpapi"
	"impo.com.uy/copetes/backend/shared/platform"
	"impo.com.uy/copetes/backend/shared/routing"
	"impo.com.uy/copetes/backend/shared/session"
)

func init() {
	entrypoint.CloudEvent("Validate", func(ctx context.Context, p *platform.Platform) (entrypoint.EventHandler, error) {
		v, version, err := newValidator()
		if err != nil {
			return nil, err
		}
		r, err := newRouter(ctx, v, version, p.Store)
		if err != nil {
			return nil, err
		}
		return eventFace{router: r}.handle, nil
	})
	entrypoint.HTTP("ValidateHTTP", func(_ context.Context, p *platform.Platform) (http.Handler, error) {
		v, _, err := newValidator()
		if err != nil {
			return nil, err
		}
		auth, err := session.VerifierFromEnv(p.Secrets, p.Sessions, p.SharedStore)
		if err != nil {
			return nil, err
		}
		return httpapi.Handler((&httpFace{validator: v, auth: auth}).validate), nil
	})
}

// MessagePublishedType is the Eventarc event type for Pub/Sub messages.
const MessagePublishedType = "google.cloud.pubsub.topic.v1.messagePublished"

// messagePublished is the event's data (google.events.cloud.pubsub.v1.
// MessagePublishedData): encoding/json decodes the base64 data field.
type messagePublished struct {
	Message *struct {
		Data        []byte            `json:"data"`
		Attributes  map[string]string `json:"attributes"`
		MessageID   string            `json:"messageId"`
		PublishTime time.Time         `json:"publishTime"`
		OrderingKey string            `json:"orderingKey"`
	} `json:"message"`
	Subscription string `json:"subscription"`
}

// eventFace is the Pub/Sub side of validate.
type eventFace struct {
	router *routing.Router
}

// handle routes one Pub/Sub message. It returns nil when the message is
// done with and an error only when a retry can help. An event that is
// not a Pub/Sub message at all (another type) is logged and dropped:
// retrying cannot change it, and it is no pipeline input. One of the right
// type whose data cannot be read goes to the invalid topic as it came.
func (f eventFace) handle(ctx context.Context, e event.Event) error {
	if e.Type() != MessagePublishedType {
		slog.ErrorContext(ctx, "event dropped: not a Pub/Sub message", "type", e.Type(), "id", e.ID(), "source", e.Source())
		return nil
	}
	m := routing.Message{ID: e.ID(), Topic: routing.SourceTopic(e.Source()), PublishTime: e.Time()}
	switch data, err := readMessage(e); {
	case err != nil:
		m.Data, m.Unreadable = e.Data(), err.Error()
	case data.Message == nil:
		m.Data, m.Unreadable = e.Data(), "it has no message"
	default:
		// For Pub/Sub, Eventarc makes the event's id the message's id.
		if id := data.Message.MessageID; id != "" {
			m.ID = id
		}
		m.Data, m.Attributes, m.OrderingKey = data.Message.Data, data.Message.Attributes, data.Message.OrderingKey
		if !data.Message.PublishTime.IsZero() {
			m.PublishTime = data.Message.PublishTime
		}
	}
	_, err := f.router.Route(ctx, m)
	if err != nil {
		// One line per retried delivery: the log-based metric of retries
		// counts it (deploy.sh setup).
		slog.WarnContext(ctx, "delivery failed; Pub/Sub will retry", "message_id", m.ID, "error", err.Error())
	}
	return err
}

// MaxDocument bounds the HTTP face's body: it is what the pipeline
// carries, so that a document ValidateHTTP approves can also be routed.
const MaxDocument = int64(routing.MaxDocumentBytes)

type httpFace struct {
	validator *document.Validator
	auth      *session.Authority
}

// validate answers 200 {"valid":true,…} or, with the errors, 422 (a JSON
// document that breaks the rules) or 400 (not JSON at all).
func (h *httpFace) validate(w http.ResponseWriter, r *http.Request) error {
	if err := httpapi.CheckMethod(w, r, http.MethodPost); err != nil {
		return err
	}
	// ValidateHTTP answers no CORS, so only a page of its own origin could
	// read its answer: the cookie counts from there alone.
	if _, err := bearer.Authenticate(r, h.auth.Verifier, bearer.Cookie{Name: h.auth.Config.Cookie}); err != nil {
		return err
	}
	if httpapi.MediaType(r) != "application/json" {
		return httpapi.UnsupportedMediaType(r, "application/json")
	}
	body, err := httpapi.ReadBody(w, r, MaxDocument)
	if err != nil {
		return err
	}
	res := h.validator.Validate(body)
	if res.Valid {
		httpapi.WriteJSON(w, struct {
			Valid      bool                  `json:"valid"`
			DocumentID string                `json:"document_id"`
			Errors     []document.FieldError `json:"errors"`
		}{true, res.DocumentID, []document.FieldError{}})
		return nil
	}
	errs, total := routing.ReportErrors(res)
	status, detail := http.StatusUnprocessableEntity, fmt.Sprintf("the document breaks %d rule(s)", total)
	if res.Malformed {
		status, detail = http.StatusBadRequest, "the body is not a JSON document"
	}
	// Bounded as a report is: the first errors, each cut short, and how
	// many there were (RFC 9457 extension members).
	httpapi.WriteJSONStatus(w, "application/problem+json", status, struct {
		httpapi.Problem
		ErrorCount    int `json:"error_count"`
		ErrorsOmitted int `json:"errors_omitted,omitempty"`
	}{httpapi.Problem{Title: http.StatusText(status), Status: status, Detail: detail, Errors: errs}, total, total - len(errs)})
	return nil
}
