package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

const (
	project       = "impo-test"
	schemaVersion = "test-schema@1"
)

type fixture struct {
	srv    *pstest.Server
	client *pubsub.Client
	router *Router
	clock  *testclock.Clock
	store  *store.Memory
}

// newFixture runs Pub/Sub in process (pstest) with the real client and
// the two topics, and a router on them whose clock the test moves.
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
	f := &fixture{srv: srv, client: client, clock: testclock.New(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))}
	f.store = store.NewMemory(f.clock.Now)
	f.router = f.newRouter(f.store)
	return f
}

// newRouter is a router as a new instance would have it: its own
// publishers, on the given store.
func (f *fixture) newRouter(st store.Store) *Router {
	v, err := document.New(nil)
	if err != nil {
		panic(err)
	}
	return &Router{
		Validator: v, Store: st, SchemaVersion: schemaVersion,
		Valid: NewPublisher(f.client, "valid"), Invalid: NewPublisher(f.client, "invalid"),
		MaxAge: 24 * time.Hour, HandledTTL: 8 * 24 * time.Hour, Lease: 2 * time.Minute, Now: f.clock.Now,
	}
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

// only returns the one message on topic, and fails unless there is
// exactly one there and none on the other topic.
func (f *fixture) only(t *testing.T, topic string) *pstest.Message {
	t.Helper()
	other := map[string]string{"valid": "invalid", "invalid": "valid"}[topic]
	got := f.published(topic)
	if len(got) != 1 || len(f.published(other)) != 0 {
		t.Fatalf("%s topic has %d messages, %s %d; want 1 and 0", topic, len(got), other, len(f.published(other)))
	}
	return got[0]
}

const validDoc = `{"document_id":"ley-20212","type":"ley","number":"20.212","date":"2023-11-06","text":"Artículo 1."}`

func (f *fixture) message(id, data string) Message {
	return Message{ID: id, Data: []byte(data), Attributes: map[string]string{"origen": "pipeline"}, PublishTime: f.clock.Now().Add(-time.Minute)}
}

func decodeReport(t *testing.T, m *pstest.Message) Report {
	t.Helper()
	var r Report
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatalf("the invalid topic's message is not a report: %v", err)
	}
	return r
}

func TestRoute_ValidGoesUnchangedToValid(t *testing.T) {
	f := newFixture(t)
	m := f.message("m1", validDoc)
	m.OrderingKey = "ley-20212"
	out, err := f.router.Route(context.Background(), m)
	if err != nil || out != Valid {
		t.Fatalf("Route = %v, %v", out, err)
	}
	got := f.only(t, "valid")
	if string(got.Data) != validDoc {
		t.Errorf("data changed: %s", got.Data)
	}
	want := map[string]string{"origen": "pipeline", AttrValidation: "valid", AttrMessageID: "m1", AttrSchema: schemaVersion}
	if diff := cmp.Diff(want, got.Attributes); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	if got.OrderingKey != "ley-20212" {
		t.Errorf("ordering key %q, want the original's", got.OrderingKey)
	}
}

// TestRoute_StaleAttributesAreReplaced: a document fed in again carries
// the verdict of its earlier run; the new outcome must not inherit it.
func TestRoute_StaleAttributesAreReplaced(t *testing.T) {
	stale := map[string]string{"origen": "pipeline", AttrValidation: "invalid", AttrErrors: "3", AttrMessageID: "old",
		AttrSchema: "old-schema", AttrReason: "too-old"}
	tests := []struct {
		name, doc, topic string
		want             map[string]string
	}{
		{"valid now", validDoc, "valid", map[string]string{"origen": "pipeline", AttrValidation: "valid", AttrMessageID: "m1", AttrSchema: schemaVersion}},
		{"invalid again", `{"document_id":"x"}`, "invalid", map[string]string{"origen": "pipeline", AttrValidation: "invalid", AttrErrors: "4",
			AttrMessageID: "m1", AttrSchema: schemaVersion, AttrReason: "invalid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			m := f.message("m1", tt.doc)
			m.Attributes = stale
			if _, err := f.router.Route(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, f.only(t, tt.topic).Attributes); diff != "" {
				t.Errorf("attributes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRoute_InvalidGoesAsAReportWithTheOriginal(t *testing.T) {
	f := newFixture(t)
	doc := `{"document_id":"x","type":"ley","number":"1,2","date":"2023-02-30","text":"t"}`
	m := f.message("m2", doc)
	m.OrderingKey, m.Topic = "x", "projects/"+project+"/topics/docs"
	out, err := f.router.Route(context.Background(), m)
	if err != nil || out != Invalid {
		t.Fatalf("Route = %v, %v", out, err)
	}
	got := f.only(t, "invalid")
	report := decodeReport(t, got)
	want := Report{
		MessageID: "m2", DocumentID: "x", Reason: ReasonInvalid, Detail: "the document breaks 2 rule(s)", ErrorCount: 2,
		Errors: []document.FieldError{
			{Path: "/date", Message: "2023-02-30 is not a real calendar date in the form YYYY-MM-DD"},
			{Path: "/number", Message: "must be digits separated by . or / (for example 20.212 or 123/025)"},
		},
		SchemaVersion: schemaVersion,
		Original: Original{MessageID: "m2", PublishTime: m.PublishTime, Topic: m.Topic, OrderingKey: "x",
			Attributes: map[string]string{"origen": "pipeline"}, Size: len(doc), Data: []byte(doc)},
	}
	if diff := cmp.Diff(want, report); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if a := got.Attributes; a[AttrValidation] != "invalid" || a[AttrErrors] != "2" || a[AttrReason] != "invalid" || a["origen"] != "pipeline" {
		t.Errorf("attributes = %v", a)
	}
	if got.OrderingKey != "x" {
		t.Errorf("ordering key %q, want the original's", got.OrderingKey)
	}
}

// reportBomb is a document whose naive report (every error listed, in
// full) is larger than a Pub/Sub message: 200,000 unknown fields and one
// whose name is 100 kB.
func reportBomb() []byte {
	var b strings.Builder
	b.WriteString(`{"document_id":"bomb","type":"ley","number":"1","date":"2023-01-01","text":"x",`)
	for i := range 200_000 {
		fmt.Fprintf(&b, `"k%06d":0,`, i)
	}
	b.WriteString(`"` + strings.Repeat("K", 100_000) + `":0}`)
	return []byte(b.String())
}

func TestRoute_ReportBombIsBoundedAndRoutedOnce(t *testing.T) {
	f := newFixture(t)
	doc := reportBomb()
	// The validator lists at most MaxErrors and reads at most MaxValues:
	// lifted here, so that routing's own bounds are what is tested.
	v, _ := document.New(nil)
	v.MaxErrors, v.MaxValues = 1<<30, 1<<30
	f.router.Validator = v
	naive, _ := json.Marshal(v.Validate(doc).Errors)
	if len(naive) <= MaxPublishBytes {
		t.Fatalf("the naive report is %d bytes: not a bomb", len(naive))
	}
	m := Message{ID: "bomb", Data: doc, PublishTime: f.clock.Now()}
	for range 2 { // and a redelivery
		if _, err := f.router.Route(context.Background(), m); err != nil {
			t.Fatalf("Route: %v; want nil, so that the message is acked", err)
		}
	}
	got := f.only(t, "invalid")
	if len(got.Data) > MaxReportBytes {
		t.Errorf("report of %d bytes, over its bound of %d", len(got.Data), MaxReportBytes)
	}
	r := decodeReport(t, got)
	if r.ErrorCount != 200_001 || len(r.Errors) != MaxReportErrors || r.ErrorsOmitted != 200_001-MaxReportErrors {
		t.Errorf("error_count %d, %d listed, %d omitted; want 200001, %d, the rest", r.ErrorCount, len(r.Errors), r.ErrorsOmitted, MaxReportErrors)
	}
	if got.Attributes[AttrErrors] != "200001" {
		t.Errorf("error_count attribute %q", got.Attributes[AttrErrors])
	}
	for _, e := range r.Errors {
		if len(e.Path) > MaxErrorFieldBytes || len(e.Message) > MaxErrorFieldBytes {
			t.Errorf("an error of %d+%d bytes: each part is bounded by %d", len(e.Path), len(e.Message), MaxErrorFieldBytes)
		}
	}
	if string(r.Original.Data) != string(doc) {
		t.Errorf("the original (%d bytes) is not in the report, though it fits: %q", len(doc), r.Original.DataOmitted)
	}
}

// bigValidDocument is a valid document of exactly size bytes.
func bigValidDocument(size int) []byte {
	head, tail := `{"document_id":"ley-big","type":"ley","number":"1","date":"2023-01-01","text":"`, `"}`
	return []byte(head + strings.Repeat("a", size-len(head)-len(tail)) + tail)
}

// TestRoute_ValidDocumentTooLargeToCarryGoesToInvalidOnce: Pub/Sub took
// the document, but not with validation's attributes added; publishing it
// would fail on every delivery.
func TestRoute_ValidDocumentTooLargeToCarryGoesToInvalidOnce(t *testing.T) {
	f := newFixture(t)
	doc := bigValidDocument(9_999_900)
	m := Message{ID: "big", Data: doc, PublishTime: f.clock.Now().Add(-time.Minute), Topic: "projects/" + project + "/topics/docs"}
	for range 2 { // and a redelivery
		if out, err := f.router.Route(context.Background(), m); err != nil {
			t.Fatalf("Route = %v, %v; want nil, so that the message is acked", out, err)
		}
	}
	got := f.only(t, "invalid")
	r := decodeReport(t, got)
	if r.Reason != ReasonTooLarge || r.ErrorCount != 1 || r.Errors[0].Path != "" || !strings.Contains(r.Errors[0].Message, "9999900 bytes") {
		t.Errorf("report %+v; want too-large, with one error at the root that gives the size", r)
	}
	if r.Original.Data != nil || r.Original.Size != len(doc) || !strings.Contains(r.Original.DataOmitted, "message big of projects/"+project+"/topics/docs") ||
		!strings.Contains(r.Original.DataOmitted, m.PublishTime.Format(time.RFC3339Nano)) {
		t.Errorf("original %+v; want no data, and where to find it", r.Original)
	}
	if got.Attributes[AttrReason] != "too-large" {
		t.Errorf("attributes %v", got.Attributes)
	}
}

// TestRoute_TooManyAttributesToCarryGoesToInvalid: with validation's
// attributes added, the message would carry more than Pub/Sub allows.
func TestRoute_TooManyAttributesToCarryGoesToInvalid(t *testing.T) {
	f := newFixture(t)
	m := f.message("crowded", validDoc)
	for i := range MaxAttributes - 1 {
		m.Attributes["a"+strconv.Itoa(i)] = "v"
	}
	if _, err := f.router.Route(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := f.only(t, "invalid")
	r := decodeReport(t, got)
	if r.Reason != ReasonTooLarge || !strings.Contains(r.Errors[0].Message, "attributes") || len(r.Original.Attributes) != MaxAttributes {
		t.Errorf("report %+v", r)
	}
	if len(got.Attributes) > MaxAttributes || got.Attributes[AttrMessageID] != "crowded" {
		t.Errorf("the report carries %d attributes (%v)", len(got.Attributes), got.Attributes)
	}
}

func TestRoute_OldMessages(t *testing.T) {
	t.Run("older than the maximum age: to invalid, with the original", func(t *testing.T) {
		f := newFixture(t)
		m := f.message("old", validDoc)
		m.PublishTime = f.clock.Now().Add(-25 * time.Hour)
		if out, err := f.router.Route(context.Background(), m); err != nil || out != Invalid {
			t.Fatalf("Route = %v, %v", out, err)
		}
		got := f.only(t, "invalid")
		r := decodeReport(t, got)
		if r.Reason != ReasonTooOld || string(r.Original.Data) != validDoc || got.Attributes[AttrReason] != "too-old" || !strings.Contains(r.Detail, "24h0m0s") {
			t.Errorf("report %+v, attributes %v", r, got.Attributes)
		}
	})
	t.Run("25 hours old under a month's maximum: validated", func(t *testing.T) {
		f := newFixture(t)
		f.router.MaxAge = 31 * 24 * time.Hour
		m := f.message("old", validDoc)
		m.PublishTime = f.clock.Now().Add(-25 * time.Hour)
		if out, err := f.router.Route(context.Background(), m); err != nil || out != Valid {
			t.Fatalf("Route = %v, %v", out, err)
		}
		f.only(t, "valid")
	})
}

// TestRoute_JudgesAsOfPublication: "in the future" means after the
// message was published, so a late delivery or a replay judges alike.
func TestRoute_JudgesAsOfPublication(t *testing.T) {
	f := newFixture(t)
	f.router.MaxAge = 365 * 24 * time.Hour
	doc := `{"document_id":"ley-1","type":"ley","number":"1","date":"2026-06-10","text":"t"}`
	early, late := f.message("early", doc), f.message("late", doc)
	early.PublishTime = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) // nine days before its date
	late.PublishTime = time.Date(2026, 6, 20, 0, 0, 0, 0, time.UTC)
	for _, m := range []Message{early, late} {
		if _, err := f.router.Route(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if v, i := f.published("valid"), f.published("invalid"); len(v) != 1 || v[0].Attributes[AttrMessageID] != "late" ||
		len(i) != 1 || i[0].Attributes[AttrMessageID] != "early" {
		t.Fatalf("valid %d, invalid %d; want the one published after its date valid, the other not", len(v), len(i))
	}
}

func TestRoute_RedeliveryIsNotPublishedAgain(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.router.Route(ctx, f.message("m3", validDoc))
	out, err := f.router.Route(ctx, f.message("m3", validDoc))
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
	m := f.message("m5", validDoc)
	m.OrderingKey = "k" // a failure pauses the key: the retry must resume it
	f.srv.SetAutoPublishResponse(false)
	f.srv.AddPublishResponse(nil, status.Error(codes.PermissionDenied, "injected: publisher role missing"))
	if _, err := f.router.Route(ctx, m); err == nil {
		t.Fatal("Route with a failing publish returned nil: the message would be acked and lost")
	}
	if n := len(f.published("valid")); n != 0 {
		t.Fatalf("%d messages published by the failed attempt", n)
	}
	f.srv.SetAutoPublishResponse(true)
	out, err := f.router.Route(ctx, m)
	if err != nil || out != Valid {
		t.Fatalf("redelivery after the failure: %v, %v", out, err)
	}
	f.router.Route(ctx, m)
	if n := len(f.published("valid")); n != 1 {
		t.Fatalf("valid topic has %d messages, want exactly 1", n)
	}
}

// TestRoute_RetryPublishesWhatWasDecided: a delivery that recorded its
// decision and then failed is followed by one that publishes the same
// outcome, even though the message has meanwhile grown too old.
func TestRoute_RetryPublishesWhatWasDecided(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	m := f.message("m6", validDoc)
	m.PublishTime = f.clock.Now().Add(-23 * time.Hour)
	f.srv.SetAutoPublishResponse(false)
	f.srv.AddPublishResponse(nil, status.Error(codes.FailedPrecondition, "injected"))
	if _, err := f.router.Route(ctx, m); err == nil {
		t.Fatal("Route with a failing publish returned nil")
	}
	f.srv.SetAutoPublishResponse(true)
	f.clock.Advance(2 * time.Hour) // now 25 hours old, over MaxAge
	log := logtest.Capture(t)
	if out, err := f.router.Route(ctx, m); err != nil || out != Valid {
		t.Fatalf("retry: %v, %v; want the decision made before, Valid", out, err)
	}
	f.only(t, "valid")
	if l := log.Messages("document validated"); len(l) != 1 || l[0]["decided_earlier"] != true {
		t.Errorf("log = %s", log)
	}
}

// errCrash is what crashingStore panics with.
var errCrash = errors.New("injected crash")

// crashingStore is a store whose write of a published outcome panics
// while armed: the delivery stops exactly between its publish and its
// record, as a process killed there would.
type crashingStore struct {
	store.Store
	armed atomic.Bool
}

func (s *crashingStore) Put(ctx context.Context, key string, e store.Entry) error {
	if s.armed.Load() && strings.HasPrefix(key, "handled:") {
		panic(errCrash)
	}
	return s.Store.Put(ctx, key, e)
}

// TestRoute_CrashBetweenPublishAndRecord is the one window the guarantee
// leaves: the next delivery, once the lease has run out, publishes the
// same message again, with the same key; none after that does.
func TestRoute_CrashBetweenPublishAndRecord(t *testing.T) {
	for _, tt := range []struct{ name, doc, topic string }{
		{"valid", validDoc, "valid"},
		{"invalid", `{"document_id":"x"}`, "invalid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			crashing := &crashingStore{Store: f.store}
			crashing.armed.Store(true)
			m := f.message("m7", tt.doc)
			m.OrderingKey = "k"
			func() {
				defer func() {
					if v := recover(); v != errCrash {
						t.Fatalf("the delivery did not stop at the record: %v", v)
					}
				}()
				f.newRouter(crashing).Route(ctx, m)
			}()
			if n := len(f.published(tt.topic)); n != 1 {
				t.Fatalf("%d messages published before the crash, want 1", n)
			}

			// A new instance, on the same store.
			next := f.newRouter(f.store)
			if _, err := next.Route(ctx, m); err == nil {
				t.Fatal("a redelivery within the crashed delivery's lease published or acked")
			}
			f.clock.Advance(next.Lease)
			if _, err := next.Route(ctx, m); err != nil {
				t.Fatalf("redelivery after the lease: %v", err)
			}
			if out, err := next.Route(ctx, m); err != nil || out != Duplicate {
				t.Fatalf("a third delivery: %v, %v; want Duplicate", out, err)
			}
			got := f.published(tt.topic)
			if len(got) != 2 {
				t.Fatalf("%d messages on %s, want the original and one duplicate", len(got), tt.topic)
			}
			if diff := cmp.Diff(got[0].Data, got[1].Data); diff != "" {
				t.Errorf("the duplicate's data differs:\n%.500s", diff)
			}
			if diff := cmp.Diff(got[0].Attributes, got[1].Attributes); diff != "" || got[1].Attributes[AttrMessageID] != "m7" ||
				got[0].OrderingKey != got[1].OrderingKey {
				t.Errorf("the duplicate is not the same message under the same key (-first +second):\n%s", diff)
			}
		})
	}
}

func TestRoute_RefusesMessagesFromItsOwnOutputs(t *testing.T) {
	f := newFixture(t)
	log := logtest.Capture(t)
	for _, topic := range []string{"valid", "invalid"} {
		m := f.message("loop-"+topic, validDoc)
		m.Topic = "projects/" + project + "/topics/" + topic
		if _, err := f.router.Route(context.Background(), m); !errors.Is(err, ErrSelfLoop) {
			t.Errorf("a message from the %s topic: %v; want ErrSelfLoop, so that it is neither republished nor acked", topic, err)
		}
	}
	if n := len(f.srv.Messages()); n != 0 {
		t.Fatalf("%d messages published", n)
	}
	if l := log.Messages("message refused: it comes from an output topic of validate"); len(l) != 2 || l[0]["severity"] != "ERROR" {
		t.Errorf("log = %s", log)
	}
}

func TestRoute_UnreadableEventGoesToInvalidAsItCame(t *testing.T) {
	f := newFixture(t)
	raw := `[1,2,3]`
	m := Message{ID: "ev-1", Data: []byte(raw), PublishTime: f.clock.Now(), Unreadable: "json: cannot unmarshal array"}
	if out, err := f.router.Route(context.Background(), m); err != nil || out != Invalid {
		t.Fatalf("Route = %v, %v", out, err)
	}
	r := decodeReport(t, f.only(t, "invalid"))
	if r.Reason != ReasonUnreadable || string(r.Original.Data) != raw || !strings.Contains(r.Detail, "cannot unmarshal array") {
		t.Errorf("report %+v", r)
	}
}

func TestRoute_WithoutTopicsOnlyLogs(t *testing.T) {
	f := newFixture(t)
	f.router.Valid, f.router.Invalid = nil, nil
	log := logtest.Capture(t)
	out, err := f.router.Route(context.Background(), f.message("m8", `{}`))
	if err != nil || out != Invalid || len(f.srv.Messages()) != 0 {
		t.Fatalf("Route = %v, %v", out, err)
	}
	if l := log.Messages("document validated"); len(l) != 1 || l[0]["outcome"] != "invalid" || l[0]["published"] != "none configured" {
		t.Fatalf("log = %s", log)
	}
}

// TestPublishLimit_IsTheClients: a message one byte over publishLimit is
// refused by the client itself; one at the limit is sent (and then fails
// for another reason: any error but the client's refusal).
func TestPublishLimit_IsTheClients(t *testing.T) {
	f := newFixture(t)
	p := NewPublisher(f.client, "valid")
	// The client checks the size before it sends anything; what is sent
	// fails fast, as it is not the point here.
	p.PublishSettings.Timeout = time.Millisecond
	topic := p.String()
	for _, tt := range []struct {
		extra     int
		oversized bool
	}{{0, false}, {1, true}} {
		// Data of n bytes, with no attributes, encodes to n + 1 + varint(n).
		n := publishLimit(topic) - 5 + tt.extra
		msg := &pubsub.Message{Data: make([]byte, n)}
		if fits := checkFits(topic, msg) == nil; fits == tt.oversized {
			t.Fatalf("checkFits on a message %d over the limit: fits=%v", tt.extra, fits)
		}
		_, err := p.Publish(context.Background(), msg).Get(context.Background())
		if errors.Is(err, pubsub.ErrOversizedMessage) != tt.oversized {
			t.Errorf("publish %d over the limit: %v", tt.extra, err)
		}
	}
}
