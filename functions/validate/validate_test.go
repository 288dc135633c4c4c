package validate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"impo.com.uy/copetes/backend/internal/logtest"
	"impo.com.uy/copetes/backend/shared/document"
	"impo.com.uy/copetes/backend/shared/env"
	"impo.com.uy/copetes/backend/shared/httpapi"
	"impo.com.uy/copetes/backend/shared/routing"
	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/session"
	"impo.com.uy/copetes/backend/shared/store"
)

const (
	project  = "impo-test"
	validDoc = `{"document_id":"ley-20212","type":"ley","number":"20.212","date":"2023-11-06","text":"Artículo 1."}`
)

// withPubSub runs pstest as the Pub/Sub emulator, with the two topics.
func withPubSub(t *testing.T) *pstest.Server {
	t.Helper()
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr)
	t.Setenv("GOOGLE_CLOUD_PROJECT", project)
	t.Setenv("VALIDATE_VALID_TOPIC", "valid")
	t.Setenv("VALIDATE_INVALID_TOPIC", "invalid")
	ctx := context.Background()
	c, err := pubsub.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, topic := range []string{"valid", "invalid"} {
		if _, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + project + "/topics/" + topic}); err != nil {
			t.Fatal(err)
		}
	}
	return srv
}

// newEventHandler builds the Validate entry point from the environment, as
// a new instance would.
func newEventHandler(t *testing.T) func(context.Context, event.Event) error {
	t.Helper()
	v, version, err := newValidator()
	if err != nil {
		t.Fatal(err)
	}
	r, err := newRouter(context.Background(), v, version, store.NewMemory(nil))
	if err != nil {
		t.Fatal(err)
	}
	return eventFace{router: r}.handle
}

func onTopic(srv *pstest.Server, topic string) []*pstest.Message {
	var out []*pstest.Message
	for _, m := range srv.Messages() {
		if m.Topic == "projects/"+project+"/topics/"+topic {
			out = append(out, m)
		}
	}
	return out
}

// pubsubEvent is the CloudEvent Eventarc sends for a Pub/Sub message.
func pubsubEvent(t *testing.T, id string, doc []byte) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(id)
	e.SetType(MessagePublishedType)
	e.SetSource("//pubsub.googleapis.com/projects/" + project + "/topics/documentos")
	data := map[string]any{
		"message": map[string]any{
			"data": doc, "messageId": id, "publishTime": time.Now().UTC().Format(time.RFC3339Nano),
			"attributes": map[string]string{"origen": "pipeline"},
		},
		"subscription": "projects/" + project + "/subscriptions/validate",
	}
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestHandleEvent_RoutesOnceToTheRightTopic(t *testing.T) {
	srv := withPubSub(t)
	handleEvent := newEventHandler(t)
	ctx := context.Background()
	if err := handleEvent(ctx, pubsubEvent(t, "m1", []byte(validDoc))); err != nil {
		t.Fatal(err)
	}
	if err := handleEvent(ctx, pubsubEvent(t, "m2", []byte(`{"type":"ley"}`))); err != nil {
		t.Fatal(err)
	}
	if err := handleEvent(ctx, pubsubEvent(t, "m1", []byte(validDoc))); err != nil { // redelivered
		t.Fatal(err)
	}
	valid, invalid := onTopic(srv, "valid"), onTopic(srv, "invalid")
	if len(valid) != 1 || string(valid[0].Data) != validDoc || valid[0].Attributes["origen"] != "pipeline" {
		t.Fatalf("valid topic: %d messages", len(valid))
	}
	var report routing.Report
	if len(invalid) != 1 || json.Unmarshal(invalid[0].Data, &report) != nil || report.MessageID != "m2" || len(report.Errors) != 4 ||
		string(report.Original.Data) != `{"type":"ley"}` || report.Original.Topic != "projects/"+project+"/topics/documentos" {
		t.Fatalf("invalid topic: %d messages, report %+v", len(invalid), report)
	}
}

// TestHandleEvent_EventsOfTheWrongTypeAreDropped: an event that is no
// Pub/Sub message cannot come from the pipeline, and no retry changes it.
func TestHandleEvent_EventsOfTheWrongTypeAreDropped(t *testing.T) {
	srv := withPubSub(t)
	handleEvent := newEventHandler(t)
	log := logtest.Capture(t)
	wrongType := pubsubEvent(t, "x1", []byte(validDoc))
	wrongType.SetType("google.cloud.storage.object.v1.finalized")
	if err := handleEvent(context.Background(), wrongType); err != nil {
		t.Errorf("%v; want nil, so that it is not retried forever", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages published for a dropped event", n)
	}
	if l := log.Messages("event dropped: not a Pub/Sub message"); len(l) != 1 || l[0]["severity"] != "ERROR" {
		t.Errorf("log:\n%s", log)
	}
}

// TestHandleEvent_UnreadableMessagesGoToInvalid: a Pub/Sub event whose
// data cannot be read is not lost: its raw data goes to the invalid
// topic, under the event's id.
func TestHandleEvent_UnreadableMessagesGoToInvalid(t *testing.T) {
	srv := withPubSub(t)
	handleEvent := newEventHandler(t)
	notAMessage := event.New()
	notAMessage.SetID("x2")
	notAMessage.SetType(MessagePublishedType)
	notAMessage.SetSource("//x")
	notAMessage.SetData(event.ApplicationJSON, []any{1})
	noMessage := event.New()
	noMessage.SetID("x3")
	noMessage.SetType(MessagePublishedType)
	noMessage.SetSource("//x")
	noMessage.SetData(event.ApplicationJSON, map[string]any{"subscription": "s"})
	noID := event.New() // the event's id stands in
	noID.SetID("x4")
	noID.SetType(MessagePublishedType)
	noID.SetSource("//x")
	noID.SetData(event.ApplicationJSON, map[string]any{"message": map[string]any{"data": "e30="}})
	want := map[string]routing.Reason{"x2": routing.ReasonUnreadable, "x3": routing.ReasonUnreadable, "x4": routing.ReasonInvalid}
	for _, e := range []event.Event{notAMessage, noMessage, noID} {
		if err := handleEvent(context.Background(), e); err != nil {
			t.Errorf("%s: %v", e.ID(), err)
		}
	}
	got := map[string]routing.Reason{}
	for _, m := range onTopic(srv, "invalid") {
		var r routing.Report
		json.Unmarshal(m.Data, &r)
		got[m.Attributes[routing.AttrMessageID]] = r.Reason
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reports by source_message_id (-want +got):\n%s", diff)
	}
}

// TestHandleEvent_KeepsTheOrderingKey: both outputs carry the input's
// ordering key.
func TestHandleEvent_KeepsTheOrderingKey(t *testing.T) {
	srv := withPubSub(t)
	handleEvent := newEventHandler(t)
	for id, doc := range map[string]string{"o1": validDoc, "o2": `{}`} {
		e := pubsubEvent(t, id, []byte(doc))
		var data map[string]any
		json.Unmarshal(e.Data(), &data)
		data["message"].(map[string]any)["orderingKey"] = "ley-20212"
		e.SetData(event.ApplicationJSON, data)
		if err := handleEvent(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	for _, topic := range []string{"valid", "invalid"} {
		if got := onTopic(srv, topic); len(got) != 1 || got[0].OrderingKey != "ley-20212" {
			t.Errorf("%s topic: %d messages, want one with the ordering key", topic, len(got))
		}
	}
}

// TestHandleEvent_RefusesItsOwnOutputs: an event from an output topic
// (a trigger on the wrong topic) is neither republished nor acked.
func TestHandleEvent_RefusesItsOwnOutputs(t *testing.T) {
	srv := withPubSub(t)
	handleEvent := newEventHandler(t)
	e := pubsubEvent(t, "l1", []byte(validDoc))
	e.SetSource("//pubsub.googleapis.com/projects/" + project + "/topics/valid")
	if err := handleEvent(context.Background(), e); !errors.Is(err, routing.ErrSelfLoop) {
		t.Fatalf("%v; want the self-loop refused", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages published", n)
	}
}

// TestNewRouter_RefusesASelfLoop: an output topic that is the trigger
// topic would feed every output back in; the function refuses to start.
func TestNewRouter_RefusesASelfLoop(t *testing.T) {
	tests := []struct {
		name, valid, invalid, trigger string
		refused                       bool
	}{
		{"valid is the trigger", "valid", "invalid", "valid", true},
		{"invalid is the trigger, by full name", "valid", "invalid", "projects/" + project + "/topics/invalid", true},
		{"full names against an id", "projects/" + project + "/topics/valid", "projects/" + project + "/topics/invalid", "valid", true},
		{"another trigger", "valid", "invalid", "documentos", false},
		{"no trigger named", "valid", "invalid", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withPubSub(t)
			t.Setenv("VALIDATE_VALID_TOPIC", tt.valid)
			t.Setenv("VALIDATE_INVALID_TOPIC", tt.invalid)
			t.Setenv("VALIDATE_TRIGGER_TOPIC", tt.trigger)
			v, _, _ := newValidator()
			_, err := newRouter(context.Background(), v, "", store.NewMemory(nil))
			var ee *env.Error
			if refused := errors.As(err, &ee) && ee.Var == "VALIDATE_TRIGGER_TOPIC" && strings.Contains(err.Error(), "self-loop"); refused != tt.refused {
				t.Fatalf("newRouter: %v; want refused=%v", err, tt.refused)
			}
		})
	}
}

func TestNewValidator_SchemaVersion(t *testing.T) {
	_, version, err := newValidator()
	if err != nil || !strings.HasPrefix(version, "https://impo.com.uy/schemas/copetes/document.schema.json@sha256:") {
		t.Fatalf("default version %q, %v; want the schema's $id and a digest", version, err)
	}
	t.Setenv("VALIDATE_SCHEMA_VERSION", "2026-11")
	if _, version, _ = newValidator(); version != "2026-11" {
		t.Fatalf("configured version %q", version)
	}
	t.Setenv("VALIDATE_SCHEMA_VERSION", strings.Repeat("v", 1025))
	if _, _, err = newValidator(); err == nil {
		t.Fatal("a version longer than an attribute can be was accepted")
	}
}

func TestHandleEvent_PublishFailureIsRetried(t *testing.T) {
	srv := withPubSub(t)
	handleEvent := newEventHandler(t)
	ctx := context.Background()
	// The topic vanishes: publishing fails until it is back.
	c, _ := pubsub.NewClient(ctx, project)
	defer c.Close()
	c.TopicAdminClient.DeleteTopic(ctx, &pubsubpb.DeleteTopicRequest{Topic: "projects/" + project + "/topics/valid"})
	if err := handleEvent(ctx, pubsubEvent(t, "m3", []byte(validDoc))); err == nil {
		t.Fatal("a failed publish returned nil: the message would be lost")
	}
	c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + project + "/topics/valid"})
	handleEvent = newEventHandler(t) // a fresh publisher, as a new instance would have
	if err := handleEvent(ctx, pubsubEvent(t, "m3", []byte(validDoc))); err != nil {
		t.Fatalf("redelivery after the topic is back: %v", err)
	}
	if n := len(onTopic(srv, "valid")); n != 1 {
		t.Fatalf("valid topic has %d messages, want 1", n)
	}
}

func newHTTPFace(t *testing.T) (http.Handler, string) {
	t.Helper()
	dir := t.TempDir()
	k, _ := session.NewKey()
	keys, _ := session.MarshalKeySet([]jose.JSONWebKey{k})
	os.WriteFile(filepath.Join(dir, "session-keys"), keys, 0o600)
	auth := session.NewAuthority(session.Config{Issuer: "i", Audience: "a", TTL: time.Hour, KeysSecret: "session-keys"},
		secrets.Dir{Path: dir}, store.NewMemory(nil), time.Now)
	v, err := document.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, _ := auth.Issuer.Issue(context.Background(), "pipeline", "service", nil)
	return httpapi.Handler((&httpFace{validator: v, auth: auth}).validate), tok
}

func TestValidateHTTP(t *testing.T) {
	h, tok := newHTTPFace(t)
	big := `{"document_id":"ley-1","type":"ley","number":"1","date":"2023-01-01","text":"` + strings.Repeat("Texto. ", 9<<20/7) + `"}`
	atLimit := sized(int(MaxDocument))
	tests := []struct {
		name, method, ct, body, token string
		wantStatus                    int
		wantType                      string
		wantPaths                     []string
	}{
		{"valid", "POST", "application/json", validDoc, tok, 200, "application/json", nil},
		{"9 MB text", "POST", "application/json", big, tok, 200, "application/json", nil},
		{"invalid", "POST", "application/json", `{"document_id":"x","type":"ley","number":"1","date":"2023-02-30"}`, tok, 422, "application/problem+json", []string{"/date", "/text"}},
		{"duplicate keys", "POST", "application/json", `{"text":"a","text":"b"}`, tok, 422, "application/problem+json", []string{"/text"}},
		{"not JSON", "POST", "application/json", `ley 20.212`, tok, 400, "application/problem+json", []string{""}},
		{"invalid UTF-8", "POST", "application/json", "{\"text\":\"\xff\"}", tok, 400, "application/problem+json", []string{""}},
		{"at the pipeline's limit", "POST", "application/json", atLimit, tok, 200, "application/json", nil},
		{"a byte over the pipeline's limit", "POST", "application/json", atLimit + " ", tok, 413, "application/problem+json", nil},
		{"10.4 MB, under 10 MiB", "POST", "application/json", sized(10_400_000), tok, 413, "application/problem+json", nil},
		{"no token", "POST", "application/json", validDoc, "", 401, "application/problem+json", nil},
		{"wrong method", "GET", "", "", tok, 405, "application/problem+json", nil},
		{"wrong content type", "POST", "text/plain", validDoc, tok, 415, "application/problem+json", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/", strings.NewReader(tt.body))
			if tt.ct != "" {
				req.Header.Set("Content-Type", tt.ct)
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			raw, _ := io.ReadAll(rec.Body)
			if rec.Code != tt.wantStatus || rec.Header().Get("Content-Type") != tt.wantType {
				t.Fatalf("got %d %s %.300s", rec.Code, rec.Header().Get("Content-Type"), raw)
			}
			var body struct {
				Valid  bool
				Errors []document.FieldError
			}
			json.Unmarshal(raw, &body)
			if tt.wantStatus == 200 && !body.Valid {
				t.Errorf("200 without valid:true: %.300s", raw)
			}
			var paths []string
			for _, e := range body.Errors {
				paths = append(paths, e.Path)
			}
			if tt.wantPaths != nil && strings.Join(paths, ",") != strings.Join(tt.wantPaths, ",") {
				t.Errorf("error paths = %q, want %q", paths, tt.wantPaths)
			}
		})
	}
}

// TestValidateHTTP_ReportBombIsBounded: a document with 50,000 errors
// gets a 422 that lists the first ones, cut short, and counts them all.
func TestValidateHTTP_ReportBombIsBounded(t *testing.T) {
	h, tok := newHTTPFace(t)
	var bomb strings.Builder
	bomb.WriteString(`{"document_id":"bomb","type":"ley","number":"1","date":"2023-01-01","text":"x"`)
	for i := range 50_000 {
		fmt.Fprintf(&bomb, `,"k%05d":0`, i)
	}
	bomb.WriteString(`,"` + strings.Repeat("K", 10_000) + `":0}`)
	req := httptest.NewRequest("POST", "/", strings.NewReader(bomb.String()))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body struct {
		Detail        string
		Errors        []document.FieldError
		ErrorCount    int `json:"error_count"`
		ErrorsOmitted int `json:"errors_omitted"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 422 {
		t.Fatalf("%d %.300s", rec.Code, rec.Body)
	}
	if body.ErrorCount != 50_001 || len(body.Errors) != routing.MaxReportErrors || body.ErrorsOmitted != 50_001-routing.MaxReportErrors ||
		body.Detail != "the document breaks 50001 rule(s)" {
		t.Errorf("%q: %d errors listed, error_count %d, %d omitted", body.Detail, len(body.Errors), body.ErrorCount, body.ErrorsOmitted)
	}
	for _, e := range body.Errors {
		if len(e.Path) > routing.MaxErrorFieldBytes {
			t.Errorf("a path of %d bytes", len(e.Path))
		}
	}
	if rec.Body.Len() > 2*routing.MaxReportErrors*routing.MaxErrorFieldBytes+1000 {
		t.Errorf("a body of %d bytes", rec.Body.Len())
	}
}

// sized is a valid document of exactly n bytes.
func sized(n int) string {
	head, tail := `{"document_id":"ley-1","type":"ley","number":"1","date":"2023-01-01","text":"`, `"}`
	return head + strings.Repeat("a", n-len(head)-len(tail)) + tail
}

// TestValidateHTTP_CookieOnlyFromItsOwnOrigin: ValidateHTTP answers no
// CORS, so a session cookie is accepted only from a page of its own
// origin; a foreign page's post, which the browser sends with the cookie,
// is refused before anything is read.
func TestValidateHTTP_CookieOnlyFromItsOwnOrigin(t *testing.T) {
	dir := t.TempDir()
	k, _ := session.NewKey()
	keys, _ := session.MarshalKeySet([]jose.JSONWebKey{k})
	os.WriteFile(filepath.Join(dir, "session-keys"), keys, 0o600)
	auth := session.NewAuthority(session.Config{Issuer: "i", Audience: "a", TTL: time.Hour, KeysSecret: "session-keys", Cookie: "impo_session"},
		secrets.Dir{Path: dir}, store.NewMemory(nil), time.Now)
	v, err := document.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, _ := auth.Issuer.Issue(context.Background(), "ana", "user", nil)
	h := httpapi.Handler((&httpFace{validator: v, auth: auth}).validate)
	tests := []struct {
		name       string
		header     []string
		wantStatus int
	}{
		{"cross-site page", []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, 403},
		{"no origin", nil, 403},
		{"same-origin page", []string{"Origin", "https://api.impo.test", "Sec-Fetch-Site", "same-origin"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", strings.NewReader(validDoc))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Cookie", "impo_session="+tok)
			for i := 0; i+1 < len(tt.header); i += 2 {
				req.Header.Set(tt.header[i], tt.header[i+1])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", rec.Code, rec.Body, tt.wantStatus)
			}
		})
	}
}
