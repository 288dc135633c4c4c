package routing

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"impo.com.uy/copetes/backend/shared/document"
)

// Reason says why a message went to the invalid topic. It is the report's
// reason and the invalid_reason attribute.
type Reason string

// The reasons.
const (
	// ReasonInvalid: the document breaks the schema or the rules (and
	// perhaps is too large as well).
	ReasonInvalid Reason = "invalid"
	// ReasonTooLarge: the document is valid, but the message that would
	// carry it to the valid topic is larger than Pub/Sub takes.
	ReasonTooLarge Reason = "too-large"
	// ReasonTooOld: published longer ago than the maximum age; not
	// validated.
	ReasonTooOld Reason = "too-old"
	// ReasonUnreadable: the event's data is not a Pub/Sub message; the
	// report's original data is the event's raw data.
	ReasonUnreadable Reason = "unreadable"
)

// Report is what the invalid topic receives: why, every error found (up
// to MaxReportErrors), and the original message, so that an operator can
// fix the document and publish it again. Its JSON is at most
// MaxReportBytes.
type Report struct {
	MessageID  string `json:"message_id"`
	DocumentID string `json:"document_id"`
	Reason     Reason `json:"reason"`
	Detail     string `json:"detail"`
	// ErrorCount is how many errors were found; Errors lists the first
	// MaxReportErrors, sorted by path, and ErrorsOmitted says how many
	// more there were.
	ErrorCount    int                   `json:"error_count"`
	Errors        []document.FieldError `json:"errors"`
	ErrorsOmitted int                   `json:"errors_omitted,omitempty"`
	SchemaVersion string                `json:"schema_version,omitempty"`
	Original      Original              `json:"original"`
}

// Original is the message as it came in. Data holds the document (base64
// in JSON) when it fits in the report; otherwise DataOmitted says so and
// how to get it back: the message id and publish time find it in a
// snapshot or by seeking the subscription.
type Original struct {
	MessageID   string            `json:"message_id"`
	PublishTime time.Time         `json:"publish_time,omitzero"`
	Topic       string            `json:"topic,omitempty"`
	OrderingKey string            `json:"ordering_key,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	Size        int               `json:"size"`
	Data        []byte            `json:"data,omitempty"`
	DataOmitted string            `json:"data_omitted,omitempty"`
}

// ErrorCount is how many errors r found in all: the validator lists at
// most its MaxErrors and counts the rest (Result.ErrorCount). It is the one
// place that knows where the total lives.
func ErrorCount(r document.Result) int { return max(r.ErrorCount, len(r.Errors)) }

// ReportErrors returns the errors of r as a report or a 422 answer lists
// them: the first MaxReportErrors, each path and message cut to
// MaxErrorFieldBytes; and how many there were in all.
func ReportErrors(r document.Result) (listed []document.FieldError, total int) {
	total = ErrorCount(r)
	n := min(len(r.Errors), MaxReportErrors)
	listed = make([]document.FieldError, n)
	for i, e := range r.Errors[:n] {
		listed[i] = document.FieldError{Path: clip(e.Path, MaxErrorFieldBytes), Message: clip(e.Message, MaxErrorFieldBytes)}
	}
	return listed, total
}

// clip cuts s to at most n bytes at a character boundary, marking the cut
// with "…".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// marshalReport encodes rep, with the original data when it fits in
// MaxReportBytes and a note of where to find it when it does not.
func marshalReport(rep Report, data []byte) ([]byte, error) {
	rep.Original.Size = len(data)
	rep.Original.DataOmitted = fmt.Sprintf("the document (%d bytes) does not fit in a report of at most %d bytes: "+
		"find message %s of %s, published at %s, in a snapshot or by seeking a subscription to that time",
		len(data), MaxReportBytes, rep.Original.MessageID, orUnknown(rep.Original.Topic), publishedAt(rep.Original.PublishTime))
	without, err := json.Marshal(rep)
	if err != nil {
		return nil, fmt.Errorf("encode the report of message %s: %w", rep.MessageID, err)
	}
	if len(without) > MaxReportBytes {
		// Cannot happen: every part of a report is bounded well below.
		return nil, fmt.Errorf("the report of message %s is %d bytes, over its bound of %d", rep.MessageID, len(without), MaxReportBytes)
	}
	// The data replaces the note: `"data":"…"` for `"data_omitted":"…"`.
	room := MaxReportBytes - len(without) + len(`"data_omitted":""`) + len(rep.Original.DataOmitted) - len(`"data":""`)
	if len(data) == 0 || base64.StdEncoding.EncodedLen(len(data)) > room {
		return without, nil
	}
	rep.Original.DataOmitted, rep.Original.Data = "", data
	with, err := json.Marshal(rep)
	if err != nil || len(with) > MaxReportBytes {
		return without, nil
	}
	return with, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "the trigger topic"
	}
	return s
}

func publishedAt(t time.Time) string {
	if t.IsZero() {
		return "an unknown time"
	}
	return t.UTC().Format(time.RFC3339Nano)
}
