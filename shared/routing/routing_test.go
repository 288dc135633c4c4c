package routing

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"impo.com.uy/copetes/backend/internal/logtest"
	"impo.com.uy/copetes/backend/internal/testclock"
	"impo.com.uy/copetes/backend/shared/document"
	"impo.com.uy/copetes/backend/shared/store"
)

const project = "impo-test"

type fixture struct {
	srv    *pstest.Server
	router *Router
	clock  *testclock.Clock
}

// newFixture runs Pub/Sub in process (pstest) with the real client and
// the two topics.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	client, err := pubsub.NewClient(ctx, project, option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	for _, topic := range []string{"valid", "invalid"} {
		if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + project + "/topics/" + topic}); err != nil {
			t.Fatal(err)
		}
	}
	v, err := document.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: srv, clock: testclock.New(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))}
	v.Today = f.clock.Now
	clock := f.clock.Now
	f.router = &Router{
		Validator: v, Store: store.NewMemory(clock),
		Valid: NewPublisher(client, "valid"), Invalid: NewPublisher(client, "invalid"),
		MaxAge: 24 * time.Hour, HandledTTL: 8 * 24 * time.Hour, Lease: 2 * time.Minute, Now: clock,
	}
	return f
}

// published returns the messages on topic.
func (f *fixture) published(topic string) []*pstest.Message {
	var out []*pstest.Message
	for _, m := range f.srv.Messages() {
		if m.Topic == "projects/"+project+"/topics/"+topic {
			out = append(out, m)
		}
	}
	return out
}

const validDoc = `{"document_id":"ley-20212","type":"ley","number":"20.212","date":"2023-11-06","text":"Artículo 1."}`

func (f *fixture) message(id, data string) Message {
	return Message{ID: id, Data: []byte(data), Attributes: map[string]string{"origen": "pipeline"}, PublishTime: f.clock.Now().Add(-time.Minute)}
}

func TestRoute_ValidGoesUnchangedToValid(t *testing.T) {
	f := newFixture(t)
	out, _, err := f.router.Route(context.Background(), f.message("m1", validDoc))
	if err != nil || out != Valid {
		t.Fatalf("Route = %v, %v", out, err)
	}
	got := f.published("valid")
	if len(got) != 1 || len(f.published("invalid")) != 0 {
		t.Fatalf("valid topic has %d messages, invalid %d; want 1 and 0", len(got), len(f.published("invalid")))
	}
	if string(got[0].Data) != validDoc {
		t.Errorf("data changed: %s", got[0].Data)
	}
	want := map[string]string{"origen": "pipeline", AttrValidation: "valid", AttrMessageID: "m1"}
	if diff := cmp.Diff(want, got[0].Attributes); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
}

func TestRoute_InvalidGoesAsAReport(t *testing.T) {
	f := newFixture(t)
	out, _, err := f.router.Route(context.Background(), f.message("m2", `{"document_id":"x","type":"ley","number":"1,2","date":"2023-02-30","text":"t"}`))
	if err != nil || out != Invalid {
		t.Fatalf("Route = %v, %v", out, err)
	}
	got := f.published("invalid")
	if len(got) != 1 || len(f.published("valid")) != 0 {
		t.Fatalf("invalid topic has %d messages, valid %d", len(got), len(f.published("valid")))
	}
	var report document.Report
	if err := json.Unmarshal(got[0].Data, &report); err != nil {
		t.Fatal(err)
	}
	if report.MessageID != "m2" || report.DocumentID != "x" || len(report.Errors) != 2 ||
		report.Errors[0].Path != "/date" || report.Errors[1].Path != "/number" {
		t.Errorf("report = %+v", report)
	}
	if a := got[0].Attributes; a[AttrValidation] != "invalid" || a[AttrErrors] != "2" || a["origen"] != "pipeline" {
		t.Errorf("attributes = %v", a)
	}
}

func TestRoute_RedeliveryIsNotPublishedAgain(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.router.Route(ctx, f.message("m3", validDoc))
	out, _, err := f.router.Route(ctx, f.message("m3", validDoc))
	if err != nil || out != Duplicate {
		t.Fatalf("redelivery: %v, %v; want Duplicate", out, err)
	}
	if n := len(f.published("valid")); n != 1 {
		t.Fatalf("valid topic has %d messages after a redelivery, want 1", n)
	}
}

func TestRoute_ConcurrentDeliveriesPublishOnce(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { f.router.Route(context.Background(), f.message("m4", validDoc)) })
	}
	wg.Wait()
	if n := len(f.published("valid")); n != 1 {
		t.Fatalf("20 concurrent deliveries published %d messages, want 1", n)
	}
}

func TestRoute_PublishFailureIsRetriedWithNothingLostOrDoubled(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.srv.SetAutoPublishResponse(false)
	f.srv.AddPublishResponse(nil, status.Error(codes.PermissionDenied, "injected: publisher role missing"))
	if _, _, err := f.router.Route(ctx, f.message("m5", validDoc)); err == nil {
		t.Fatal("Route with a failing publish returned nil: the message would be acked and lost")
	}
	if n := len(f.published("valid")); n != 0 {
		t.Fatalf("%d messages published by the failed attempt", n)
	}
	f.srv.SetAutoPublishResponse(true)
	out, _, err := f.router.Route(ctx, f.message("m5", validDoc))
	if err != nil || out != Valid {
		t.Fatalf("redelivery after the failure: %v, %v", out, err)
	}
	f.router.Route(ctx, f.message("m5", validDoc))
	if n := len(f.published("valid")); n != 1 {
		t.Fatalf("valid topic has %d messages, want exactly 1", n)
	}
}

func TestRoute_TooOldIsDroppedWithAWarning(t *testing.T) {
	f := newFixture(t)
	log := logtest.Capture(t)
	m := f.message("m6", validDoc)
	m.PublishTime = f.clock.Now().Add(-25 * time.Hour)
	out, _, err := f.router.Route(context.Background(), m)
	if err != nil || out != TooOld || len(f.srv.Messages()) != 0 {
		t.Fatalf("Route = %v, %v, %d published", out, err, len(f.srv.Messages()))
	}
	if w := log.Messages("message dropped: older than the maximum age"); len(w) != 1 || w[0]["severity"] != "WARNING" {
		t.Fatalf("log = %s", log)
	}
}

func TestRoute_WithoutTopicsOnlyLogs(t *testing.T) {
	f := newFixture(t)
	f.router.Valid, f.router.Invalid = nil, nil
	log := logtest.Capture(t)
	out, _, err := f.router.Route(context.Background(), f.message("m7", `{}`))
	if err != nil || out != Invalid || len(f.srv.Messages()) != 0 {
		t.Fatalf("Route = %v, %v", out, err)
	}
	if l := log.Messages("document validated"); len(l) != 1 || l[0]["outcome"] != "invalid" || l[0]["published"] != "none configured" {
		t.Fatalf("log = %s", log)
	}
}
