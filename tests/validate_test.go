package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/google/go-cmp/cmp"

	"impo.com.uy/copetes/backend/internal/emulators"
	"impo.com.uy/copetes/backend/shared/routing"
	"impo.com.uy/copetes/backend/shared/store"
)

const e2eProject = "impo-e2e"

// pubsubSetup makes the pipeline's topics and a subscription on each, on
// the emulator, under names unique to the test.
type pubsubSetup struct {
	client  *pubsub.Client
	prefix  string
	topicOf map[string]string // subscription -> its topic
	markers atomic.Int64
}

// deliveryGuard bounds a wait for messages. It only turns a message that
// never comes into a failure: no test learns from it that nothing more
// will come (pullAll's marker tells that).
const deliveryGuard = time.Minute

// markerAttr marks the messages that pullAll publishes; every receive
// drops them.
const markerAttr = "e2e_marker"

func newPubSub(t *testing.T, host string) *pubsubSetup {
	t.Helper()
	t.Setenv("PUBSUB_EMULATOR_HOST", host)
	c, err := pubsub.NewClient(context.Background(), e2eProject)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := &pubsubSetup{client: c, prefix: strings.ToLower(uniqueName(t)), topicOf: map[string]string{}}
	for _, name := range []string{"docs", "valid", "invalid"} {
		p.createTopic(t, name)
		p.createSubscription(t, name, name)
	}
	return p
}

func (p *pubsubSetup) topic(name string) string {
	return "projects/" + e2eProject + "/topics/" + p.prefix + "-" + name
}

func (p *pubsubSetup) sub(name string) string {
	return "projects/" + e2eProject + "/subscriptions/" + p.prefix + "-" + name
}

func (p *pubsubSetup) createTopic(t *testing.T, name string) {
	t.Helper()
	if _, err := p.client.TopicAdminClient.CreateTopic(context.Background(), &pubsubpb.Topic{Name: p.topic(name)}); err != nil {
		t.Fatal(err)
	}
}

func (p *pubsubSetup) createSubscription(t *testing.T, name, topic string) {
	t.Helper()
	if _, err := p.client.SubscriptionAdminClient.CreateSubscription(context.Background(),
		&pubsubpb.Subscription{Name: p.sub(name), Topic: p.topic(topic), AckDeadlineSeconds: 10}); err != nil {
		t.Fatal(err)
	}
	p.topicOf[name] = topic
}

// receive takes messages from sub, acking each, until it holds at least
// n of them and, unless marker is empty, the marker message too. It
// returns as soon as it has them; a message that arrives later is nacked,
// and left for the next receive. Marker messages are never returned.
func (p *pubsubSetup) receive(t *testing.T, sub string, n int, marker string) []*pubsub.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deliveryGuard)
	defer cancel()
	s := p.client.Subscriber(p.sub(sub))
	// One message at a time, on one stream: the callbacks see the
	// messages in the order the emulator hands them out.
	s.ReceiveSettings.MaxOutstandingMessages = 1
	s.ReceiveSettings.NumGoroutines = 1
	var (
		mu        sync.Mutex
		got       []*pubsub.Message
		sawMarker = marker == ""
		complete  bool
	)
	err := s.Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		mu.Lock()
		defer mu.Unlock()
		if complete {
			m.Nack()
			return
		}
		if id, ok := m.Attributes[markerAttr]; ok {
			sawMarker = sawMarker || id == marker
		} else {
			got = append(got, m)
		}
		m.Ack()
		if sawMarker && len(got) >= n {
			complete = true
			cancel()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !complete {
		t.Fatalf("%s: %d messages (marker seen: %v) when the %s guard ended, want %d", sub, len(got), sawMarker, deliveryGuard, n)
	}
	return got
}

// pull returns the first n messages on sub, as soon as they arrive.
func (p *pubsubSetup) pull(t *testing.T, sub string, n int) []*pubsub.Message {
	t.Helper()
	return p.receive(t, sub, n, "")
}

// pullAll returns every message on sub, at least want of them: it
// publishes a marker on sub's topic and receives up to it, so that it
// never waits for a message that is not coming. Call it once whatever
// should have been published is published (a delivery answered).
//
// It counts on the emulator handing out a subscription's messages in the
// order they were published, which the official emulator does and the
// service does not promise. Were one to come after the marker, pullAll
// would miss it: a duplicate could go unseen, but a correct run never
// fails.
func (p *pubsubSetup) pullAll(t *testing.T, sub string, want int) []*pubsub.Message {
	t.Helper()
	ctx := context.Background()
	marker := fmt.Sprintf("%s-%d", sub, p.markers.Add(1))
	pub := p.client.Publisher(p.topic(p.topicOf[sub]))
	defer pub.Stop()
	if _, err := pub.Publish(ctx, &pubsub.Message{Data: []byte("marker"), Attributes: map[string]string{markerAttr: marker}}).Get(ctx); err != nil {
		t.Fatal(err)
	}
	return p.receive(t, sub, want, marker)
}

// publish puts doc on the docs topic and takes it back from its
// subscription, so that the message carries the id and publish time that
// Pub/Sub gave it, as Eventarc would deliver it.
func (p *pubsubSetup) publish(t *testing.T, doc string) *pubsub.Message {
	t.Helper()
	return p.publishWith(t, &pubsub.Message{Data: []byte(doc), Attributes: map[string]string{"origen": "pipeline"}})
}

// publishWith is publish for a message of the test's making: its own
// attributes, an ordering key.
func (p *pubsubSetup) publishWith(t *testing.T, m *pubsub.Message) *pubsub.Message {
	t.Helper()
	ctx := context.Background()
	pub := p.client.Publisher(p.topic("docs"))
	pub.EnableMessageOrdering = m.OrderingKey != ""
	defer pub.Stop()
	if _, err := pub.Publish(ctx, m).Get(ctx); err != nil {
		t.Fatal(err)
	}
	return p.pull(t, "docs", 1)[0]
}

// eventarcData is the MessagePublishedData body Eventarc sends.
func (p *pubsubSetup) eventarcData(m *pubsub.Message) map[string]any {
	return map[string]any{
		"message": map[string]any{
			"data": m.Data, "attributes": m.Attributes, "messageId": m.ID, "message_id": m.ID,
			"publishTime": m.PublishTime.UTC().Format(time.RFC3339Nano), "orderingKey": m.OrderingKey,
		},
		"subscription": p.sub("eventarc"),
	}
}

// deliverBinary posts the event in CloudEvents binary mode: attributes in
// ce-* headers, the data as the body.
func deliverBinary(t *testing.T, url, eventType string, m *pubsub.Message, data map[string]any) int {
	t.Helper()
	st, err := postBinary(url, eventType, "//pubsub.googleapis.com/projects/"+e2eProject+"/topics/docs", m, data)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// postBinary is deliverBinary from any goroutine, with the event's source.
func postBinary(url, eventType, source string, m *pubsub.Message, data map[string]any) (int, error) {
	body, _ := json.Marshal(data)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-id", m.ID)
	req.Header.Set("ce-source", source)
	req.Header.Set("ce-time", m.PublishTime.UTC().Format(time.RFC3339Nano))
	if eventType != "" {
		req.Header.Set("ce-type", eventType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// deliverStructured posts the whole event as application/cloudevents+json.
func deliverStructured(t *testing.T, url string, m *pubsub.Message, data map[string]any) int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"specversion": "1.0", "id": m.ID, "type": "google.cloud.pubsub.topic.v1.messagePublished",
		"source":          "//pubsub.googleapis.com/projects/" + e2eProject + "/topics/docs",
		"datacontenttype": "application/json", "data": data,
	})
	resp, err := http.Post(url, "application/cloudevents+json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

const pubsubType = "google.cloud.pubsub.topic.v1.messagePublished"

func TestValidate_PubSubThroughTheEmulator(t *testing.T) {
	host := emulators.PubSub(t).Host
	ps := newPubSub(t, host)
	s := startLocal(t, "CREDENTIALS_DIR="+t.TempDir(), "SECRETS_SOURCE=dir", "GOOGLE_CLOUD_PROJECT="+e2eProject,
		"PUBSUB_EMULATOR_HOST="+host, "VALIDATE_VALID_TOPIC="+ps.topic("valid"), "VALIDATE_INVALID_TOPIC="+ps.topic("invalid"))
	url := s.URL + "/Validate"
	const good = `{"document_id":"ley-20212","type":"ley","number":"20.212","date":"2023-11-06","text":"Artículo 1."}`

	// A valid document reaches the valid topic unchanged, once, and the
	// verdict of an earlier run that it carries is replaced.
	m := ps.publishWith(t, &pubsub.Message{Data: []byte(good), Attributes: map[string]string{
		"origen": "pipeline", "validation": "invalid", "error_count": "3", "source_message_id": "old"}})
	if st := deliverBinary(t, url, pubsubType, m, ps.eventarcData(m)); st/100 != 2 {
		t.Fatalf("delivery: status %d\n%s", st, s.Stdout)
	}
	valid := ps.pullAll(t, "valid", 1)
	if len(valid) != 1 || string(valid[0].Data) != good {
		t.Fatalf("valid topic got %d messages: %v", len(valid), valid)
	}
	if a := valid[0].Attributes; len(a) != 4 || a["validation"] != "valid" || a["origen"] != "pipeline" || a["source_message_id"] != m.ID ||
		!strings.HasPrefix(a["schema_version"], "https://impo.com.uy/schemas/copetes/document.schema.json@sha256:") {
		t.Fatalf("valid topic attributes: %v", a)
	}
	// Redelivered: nothing new anywhere.
	if st := deliverBinary(t, url, pubsubType, m, ps.eventarcData(m)); st/100 != 2 {
		t.Fatalf("redelivery: status %d", st)
	}
	if again := ps.pullAll(t, "valid", 0); len(again) != 0 {
		t.Fatalf("a redelivered message was published again (%d)", len(again))
	}

	// An invalid document, in structured mode, becomes a report.
	bad := ps.publish(t, `{"document_id":"ley-1","type":"ley","number":"1","date":"2023-02-30","text":"x"}`)
	if st := deliverStructured(t, url, bad, ps.eventarcData(bad)); st/100 != 2 {
		t.Fatalf("structured delivery: status %d", st)
	}
	invalid := ps.pullAll(t, "invalid", 1)
	var report routing.Report
	if len(invalid) != 1 || json.Unmarshal(invalid[0].Data, &report) != nil || report.MessageID != bad.ID ||
		report.DocumentID != "ley-1" || len(report.Errors) != 1 || report.Errors[0].Path != "/date" ||
		string(report.Original.Data) != string(bad.Data) || report.Original.Attributes["origen"] != "pipeline" {
		t.Fatalf("invalid topic got %d messages, report %+v", len(invalid), report)
	}

	// A CloudEvent without its type is refused; one of another type is
	// acked and dropped.
	if st := deliverBinary(t, url, "", m, ps.eventarcData(m)); st != 400 {
		t.Fatalf("event without ce-type: status %d, want 400", st)
	}
	other := ps.publish(t, good)
	if st := deliverBinary(t, url, "google.cloud.storage.object.v1.finalized", other, ps.eventarcData(other)); st/100 != 2 {
		t.Fatalf("event of another type: status %d, want 2xx (dropped, not retried)", st)
	}
	if n := len(ps.pullAll(t, "valid", 0)); n != 0 {
		t.Fatalf("an event of another type was published (%d)", n)
	}
}

func TestValidate_PublishFailureThenRedeliveryLosesNothing(t *testing.T) {
	host := emulators.PubSub(t).Host
	ps := newPubSub(t, host)
	s := startLocal(t, "CREDENTIALS_DIR="+t.TempDir(), "SECRETS_SOURCE=dir", "GOOGLE_CLOUD_PROJECT="+e2eProject,
		"PUBSUB_EMULATOR_HOST="+host, "VALIDATE_VALID_TOPIC="+ps.topic("valid"), "VALIDATE_INVALID_TOPIC="+ps.topic("invalid"))
	url := s.URL + "/Validate"
	const good = `{"document_id":"dec-5","type":"decreto","number":"5/026","date":"2026-01-05","text":"Artículo único."}`
	m := ps.publish(t, good)

	// The valid topic is gone: the delivery fails and must be retried.
	ctx := context.Background()
	if err := ps.client.TopicAdminClient.DeleteTopic(ctx, &pubsubpb.DeleteTopicRequest{Topic: ps.topic("valid")}); err != nil {
		t.Fatal(err)
	}
	if st := deliverBinary(t, url, pubsubType, m, ps.eventarcData(m)); st/100 == 2 {
		t.Fatalf("delivery with the topic missing: status %d; want a failure, so that Pub/Sub retries", st)
	}

	// The topic is back: the redelivery publishes it once.
	ps.createTopic(t, "valid")
	ps.createSubscription(t, "valid-again", "valid")
	if st := deliverBinary(t, url, pubsubType, m, ps.eventarcData(m)); st/100 != 2 {
		t.Fatalf("redelivery: status %d\n%s", st, s.Stdout)
	}
	deliverBinary(t, url, pubsubType, m, ps.eventarcData(m))
	got := ps.pullAll(t, "valid-again", 1)
	if len(got) != 1 || string(got[0].Data) != good {
		t.Fatalf("valid topic got %d messages, want exactly 1", len(got))
	}
}

// logShows waits until s has logged a line holding text. The process
// logs before it answers, but its log reaches the test through a pipe.
func logShows(s *localServer, text string) error {
	ctx, cancel := context.WithTimeout(context.Background(), deliveryGuard)
	defer cancel()
	_, err := s.Stdout.Line(ctx, regexp.MustCompile(regexp.QuoteMeta(text)))
	return err
}

// validateEnv is the environment of a cmd/local that publishes to ps's
// topics through host.
func validateEnv(ps *pubsubSetup, host string) []string {
	return []string{"PUBSUB_EMULATOR_HOST=" + host, "VALIDATE_VALID_TOPIC=" + ps.topic("valid"),
		"VALIDATE_INVALID_TOPIC=" + ps.topic("invalid"), "VALIDATE_TRIGGER_TOPIC=" + ps.topic("docs")}
}

// TestValidate_DocumentsTooLargeToCarryAreRoutedOnce: a valid document
// that Pub/Sub took but cannot carry with validation's attributes, and a
// document whose every error listed would outweigh a message, each reach
// the invalid topic once and are acked, delivery and redelivery alike.
func TestValidate_DocumentsTooLargeToCarryAreRoutedOnce(t *testing.T) {
	host := emulators.PubSub(t).Host
	ps := newPubSub(t, host)
	s := startLocal(t, append([]string{"CREDENTIALS_DIR=" + t.TempDir(), "SECRETS_SOURCE=dir", "GOOGLE_CLOUD_PROJECT=" + e2eProject},
		validateEnv(ps, host)...)...)
	url := s.URL + "/Validate"

	head, tail := `{"document_id":"ley-big","type":"ley","number":"1","date":"2023-01-01","text":"`, `"}`
	big := ps.publishWith(t, &pubsub.Message{Data: []byte(head + strings.Repeat("a", 9_999_900-len(head)-len(tail)) + tail)})
	var bomb strings.Builder
	bomb.WriteString(`{"document_id":"bomb","type":"ley","number":"1","date":"2023-01-01","text":"x"`)
	for i := range 200_000 {
		fmt.Fprintf(&bomb, `,"k%06d":0`, i)
	}
	bomb.WriteString(`}`)
	bombed := ps.publish(t, bomb.String())

	for _, m := range []*pubsub.Message{big, bombed, big, bombed} {
		if st := deliverBinary(t, url, pubsubType, m, ps.eventarcData(m)); st/100 != 2 {
			t.Fatalf("delivery of %d bytes: status %d; want 2xx, so that it is acked\n%s", len(m.Data), st, s.Stdout)
		}
	}
	reports := map[string]routing.Report{}
	for _, m := range ps.pullAll(t, "invalid", 2) {
		var r routing.Report
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		if _, again := reports[r.MessageID]; again {
			t.Errorf("message %s reported twice", r.MessageID)
		}
		reports[r.MessageID] = r
	}
	if r := reports[big.ID]; r.Reason != routing.ReasonTooLarge || r.Original.Data != nil || !strings.Contains(r.Original.DataOmitted, big.ID) {
		t.Errorf("report on the 9,999,900-byte document: %+v", r)
	}
	// The validator stops reading past document.MaxValues, so the bomb is
	// one error; what matters is that the report is bounded, routed once
	// and carries the original to fix and republish.
	if r := reports[bombed.ID]; r.ErrorCount < 1 || len(r.Errors) == 0 || len(r.Errors) > routing.MaxReportErrors || string(r.Original.Data) != bomb.String() {
		t.Errorf("report on the bomb: %d errors listed of %d, original of %d bytes", len(r.Errors), r.ErrorCount, len(r.Original.Data))
	}
	if n := len(ps.pullAll(t, "valid", 0)); n != 0 {
		t.Errorf("%d messages on the valid topic", n)
	}
}

// TestValidate_OldMessageIsRoutedNotDropped: a backlog after a day-long
// outage, or a replay by seek, is validated like any message.
func TestValidate_OldMessageIsRoutedNotDropped(t *testing.T) {
	host := emulators.PubSub(t).Host
	ps := newPubSub(t, host)
	s := startLocal(t, append([]string{"CREDENTIALS_DIR=" + t.TempDir(), "SECRETS_SOURCE=dir", "GOOGLE_CLOUD_PROJECT=" + e2eProject},
		validateEnv(ps, host)...)...)
	m := ps.publish(t, `{"document_id":"ley-3","type":"ley","number":"3","date":"2024-01-03","text":"Artículo 1."}`)
	m.PublishTime = time.Now().Add(-25 * time.Hour)
	if st := deliverBinary(t, s.URL+"/Validate", pubsubType, m, ps.eventarcData(m)); st/100 != 2 {
		t.Fatalf("delivery: status %d", st)
	}
	if got := ps.pullAll(t, "valid", 1); len(got) != 1 || got[0].Attributes["source_message_id"] != m.ID {
		t.Fatalf("a 25-hour-old message: %d on the valid topic, want it there", len(got))
	}
}

// TestValidate_SelfLoopIsRefused: an output topic that is the trigger
// topic, by configuration or by the event's source, is refused, and
// nothing is published or acked.
func TestValidate_SelfLoopIsRefused(t *testing.T) {
	host := emulators.PubSub(t).Host
	ps := newPubSub(t, host)
	base := []string{"CREDENTIALS_DIR=" + t.TempDir(), "SECRETS_SOURCE=dir", "GOOGLE_CLOUD_PROJECT=" + e2eProject,
		"PUBSUB_EMULATOR_HOST=" + host, "VALIDATE_VALID_TOPIC=" + ps.topic("valid"), "VALIDATE_INVALID_TOPIC=" + ps.topic("invalid")}
	m := ps.publish(t, `{"document_id":"ley-4","type":"ley","number":"4","date":"2024-01-04","text":"Artículo 1."}`)

	looped := startLocal(t, append(base, "VALIDATE_TRIGGER_TOPIC="+ps.topic("valid"))...)
	if st := deliverBinary(t, looped.URL+"/Validate", pubsubType, m, ps.eventarcData(m)); st/100 != 5 {
		t.Errorf("a trigger topic that is an output: status %d, want 5xx", st)
	}
	if err := logShows(looped, "VALIDATE_TRIGGER_TOPIC: a topic other than"); err != nil {
		t.Errorf("the log does not say why: %v\n%s", err, looped.Stdout)
	}

	unnamed := startLocal(t, base...)
	st, err := postBinary(unnamed.URL+"/Validate", pubsubType, "//pubsub.googleapis.com/"+ps.topic("valid"), m, ps.eventarcData(m))
	if err != nil || st/100 != 5 {
		t.Errorf("an event from an output topic: status %d, %v; want 5xx", st, err)
	}
	if n := len(ps.pullAll(t, "valid", 0)) + len(ps.pullAll(t, "invalid", 0)); n != 0 {
		t.Fatalf("%d messages published in a self-loop", n)
	}
}

// TestValidate_OrderingKeysSurvive: both outputs carry the input's
// ordering key, to subscriptions that deliver in order.
func TestValidate_OrderingKeysSurvive(t *testing.T) {
	host := emulators.PubSub(t).Host
	ps := newPubSub(t, host)
	for _, name := range []string{"valid", "invalid"} {
		if _, err := ps.client.SubscriptionAdminClient.CreateSubscription(context.Background(), &pubsubpb.Subscription{
			Name: ps.sub(name + "-ordered"), Topic: ps.topic(name), AckDeadlineSeconds: 10, EnableMessageOrdering: true}); err != nil {
			t.Fatal(err)
		}
		ps.topicOf[name+"-ordered"] = name
	}
	s := startLocal(t, append([]string{"CREDENTIALS_DIR=" + t.TempDir(), "SECRETS_SOURCE=dir", "GOOGLE_CLOUD_PROJECT=" + e2eProject},
		validateEnv(ps, host)...)...)
	for _, doc := range []string{`{"document_id":"ley-5","type":"ley","number":"5","date":"2024-01-05","text":"Artículo 1."}`, `{}`} {
		m := ps.publishWith(t, &pubsub.Message{Data: []byte(doc), OrderingKey: "ley-5"})
		if m.OrderingKey != "ley-5" {
			t.Fatalf("the emulator dropped the input's ordering key")
		}
		if st := deliverBinary(t, s.URL+"/Validate", pubsubType, m, ps.eventarcData(m)); st/100 != 2 {
			t.Fatalf("delivery: status %d", st)
		}
	}
	for _, sub := range []string{"valid-ordered", "invalid-ordered"} {
		if got := ps.pull(t, sub, 1); got[0].OrderingKey != "ley-5" {
			t.Errorf("%s: ordering key %q, want the input's", sub, got[0].OrderingKey)
		}
	}
}

// TestValidate_PushBodyIsAcceptedInBothModes: a Pub/Sub push body (no
// CloudEvent headers) is taken by /Validate among all the functions as by
// FUNCTION_TARGET=Validate, where the Functions Framework converts it.
func TestValidate_PushBodyIsAcceptedInBothModes(t *testing.T) {
	host := emulators.PubSub(t).Host
	ps := newPubSub(t, host)
	env := append([]string{"CREDENTIALS_DIR=" + t.TempDir(), "SECRETS_SOURCE=dir", "GOOGLE_CLOUD_PROJECT=" + e2eProject},
		validateEnv(ps, host)...)
	all := startLocal(t, env...)
	alone := startTarget(t, "Validate", env...)
	var ids []string
	for _, url := range []string{all.URL + "/Validate/" + ps.topic("docs"), alone + "/" + ps.topic("docs")} {
		m := ps.publish(t, `{"document_id":"ley-6","type":"ley","number":"6","date":"2024-01-06","text":"Artículo 1."}`)
		body, _ := json.Marshal(map[string]any{"message": map[string]any{
			"data": m.Data, "attributes": m.Attributes, "messageId": m.ID, "publishTime": m.PublishTime.UTC().Format(time.RFC3339Nano),
		}, "subscription": ps.sub("push")})
		if st, _ := post(t, url, "application/json", string(body)); st/100 != 2 {
			t.Errorf("push body to %s: status %d\n%s", url, st, all.Stdout)
		}
		ids = append(ids, m.ID)
	}
	var got []string
	for _, m := range ps.pullAll(t, "valid", 2) {
		got = append(got, m.Attributes["source_message_id"])
	}
	if diff := cmp.Diff(ids, got); diff != "" {
		t.Errorf("valid topic (-want +got):\n%s", diff)
	}
}

// stallingProxy forwards TCP connections to a server. Once stalled, it
// holds back all the server says: a request still reaches the server, and
// its answer does not come back.
type stallingProxy struct {
	Addr    string
	mu      sync.Mutex
	cond    *sync.Cond
	stalled bool
}

func newStallingProxy(t *testing.T, target string) *stallingProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallingProxy{Addr: lis.Addr().String()}
	p.cond = sync.NewCond(&p.mu)
	var conns sync.WaitGroup
	t.Cleanup(func() {
		lis.Close()
		p.release()
		conns.Wait()
	})
	go func() {
		for {
			client, err := lis.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { p.serve(client, target) })
		}
	}()
	return p
}

func (p *stallingProxy) serve(client net.Conn, target string) {
	defer client.Close()
	server, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer server.Close()
	go func() {
		io.Copy(server, client) // requests always pass
		server.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.stalled {
				p.cond.Wait()
			}
			p.mu.Unlock()
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stallingProxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = true
}

func (p *stallingProxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = false
	p.cond.Broadcast()
}

// TestValidate_CrashBetweenPublishAndRecord kills an instance at the one
// point the guarantee allows a duplicate: Pub/Sub has the outcome, and the
// instance, still waiting for Pub/Sub's answer, has not recorded it. The
// state lives in Firestore, as deployed. The next delivery publishes the
// same message once more, under the same key; none after it does.
func TestValidate_CrashBetweenPublishAndRecord(t *testing.T) {
	host := emulators.PubSub(t).Host
	ps := newPubSub(t, host)
	proxy := newStallingProxy(t, host)
	fsEnv := firestoreEnv(t, t.TempDir())
	env := func(pubsubHost string) []string {
		return append(append([]string{}, fsEnv...), validateEnv(ps, pubsubHost)...)
	}
	first := startLocal(t, env(proxy.Addr)...)

	// Its publisher connects through the proxy first, while answers pass.
	warm := ps.publish(t, `{"document_id":"ley-7","type":"ley","number":"7","date":"2024-01-07","text":"Artículo 1."}`)
	if st := deliverBinary(t, first.URL+"/Validate", pubsubType, warm, ps.eventarcData(warm)); st/100 != 2 {
		t.Fatalf("warm-up delivery: %d", st)
	}
	ps.pull(t, "valid", 1)

	m := ps.publishWith(t, &pubsub.Message{Data: []byte(`{"document_id":"ley-8","type":"ley","number":"8","date":"2024-01-08","text":"Artículo 1."}`),
		Attributes: map[string]string{"origen": "pipeline"}, OrderingKey: "ley-8"})
	proxy.stall()
	answered := make(chan error, 1)
	go func() {
		st, err := postBinary(first.URL+"/Validate", pubsubType, "//pubsub.googleapis.com/"+ps.topic("docs"), m, ps.eventarcData(m))
		if err == nil {
			err = fmt.Errorf("answered %d", st)
		}
		answered <- err
	}()
	original := ps.pull(t, "valid", 1)[0] // Pub/Sub has it
	first.cmd.Process.Kill()
	t.Logf("the killed delivery: %v", <-answered)
	proxy.release()

	// The crashed delivery's lease would run out (VALIDATE_LEASE); the
	// test ends it instead of waiting.
	var collection string
	for _, e := range fsEnv {
		if c, ok := strings.CutPrefix(e, "STATE_COLLECTION="); ok {
			collection = c
		}
		if h, ok := strings.CutPrefix(e, "FIRESTORE_EMULATOR_HOST="); ok {
			t.Setenv("FIRESTORE_EMULATOR_HOST", h)
		}
	}
	st, err := store.NewFirestore(context.Background(), e2eProject, "(default)", collection)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Delete(context.Background(), "lease:"+m.ID); err != nil {
		t.Fatal(err)
	}

	second := startLocal(t, env(host)...)
	for range 2 { // the redelivery, and one more
		if st := deliverBinary(t, second.URL+"/Validate", pubsubType, m, ps.eventarcData(m)); st/100 != 2 {
			t.Fatalf("redelivery: %d\n%s", st, second.Stdout)
		}
	}
	again := ps.pullAll(t, "valid", 1)
	if len(again) != 1 {
		t.Fatalf("%d messages after the crash, want exactly one duplicate", len(again))
	}
	dup := again[0]
	if string(dup.Data) != string(original.Data) || dup.OrderingKey != original.OrderingKey || dup.Attributes["source_message_id"] != m.ID {
		t.Errorf("the duplicate is not the same message")
	}
	if diff := cmp.Diff(original.Attributes, dup.Attributes); diff != "" {
		t.Errorf("the duplicate's attributes differ (-first +second):\n%s", diff)
	}
	if err := logShows(second, `"decided_earlier":true`); err != nil {
		t.Errorf("the redelivery did not reuse the recorded decision:\n%s", second.Stdout)
	}
}
