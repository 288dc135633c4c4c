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
		v, err := newValidator()
		if err != nil {
			return nil, err
		}
		r, err := newRouter(ctx, v, p.Store)
		if err != nil {
			return nil, err
		}
		return eventFace{router: r}.handle, nil
	})
	entrypoint.HTTP("ValidateHTTP", func(_ context.Context, p *platform.Platform) (http.Handler, error) {
		v, err := newValidator()
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
	Message struct {
		Data        []byte            `json:"data"`
		Attributes  map[string]string `json:"attributes"`
		MessageID   string            `json:"messageId"`
		PublishTime time.Time         `json:"publishTime"`
	} `json:"message"`
	Subscription string `json:"subscription"`
}

// eventFace is the Pub/Sub side of validate.
type eventFace struct {
	router *routing.Router
}

// handle routes one Pub/Sub message. It returns nil when the message is
// done with, including when it can never be handled (a malformed event):
// Pub/Sub would retry that forever. It returns an error only when a retry
// can help.
func (f eventFace) handle(ctx context.Context, e event.Event) error {
	if e.Type() != MessagePublishedType {
		slog.ErrorContext(ctx, "event dropped: not a Pub/Sub message", "type", e.Type(), "id", e.ID(), "source", e.Source())
		return nil
	}
	var data messagePublished
	if err := e.DataAs(&data); err != nil {
		slog.ErrorContext(ctx, "event dropped: its data is not a Pub/Sub message", "id", e.ID(), "error", err.Error())
		return nil
	}
	if data.Message.MessageID == "" {
		slog.ErrorContext(ctx, "event dropped: the Pub/Sub message has no messageId", "id", e.ID())
		return nil
	}
	_, _, err := f.router.Route(ctx, routing.Message{
		ID:          data.Message.MessageID,
		Data:        data.Message.Data,
		Attributes:  data.Message.Attributes,
		PublishTime: data.Message.PublishTime,
	})
	return err
}

// MaxDocument bounds the HTTP face's body: Pub/Sub itself caps a message
// at 10 MB.
const MaxDocument = 10 << 20

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
	status, detail := http.StatusUnprocessableEntity, fmt.Sprintf("the document breaks %d rule(s)", len(res.Errors))
	if res.Malformed {
		status, detail = http.StatusBadRequest, "the body is not a JSON document"
	}
	httpapi.WriteJSONStatus(w, "application/problem+json", status, httpapi.Problem{
		Title: http.StatusText(status), Status: status, Detail: detail, Errors: res.Errors,
	})
	return nil
}
