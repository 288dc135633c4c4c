package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"impo.com.uy/copetes/backend/internal/emulators"
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
	ctx := context.Background()
	pub := p.client.Publisher(p.topic("docs"))
	defer pub.Stop()
	if _, err := pub.Publish(ctx, &pubsub.Message{Data: []byte(doc), Attributes: map[string]string{"origen": "pipeline"}}).Get(ctx); err != nil {
		t.Fatal(err)
	}
	return p.pull(t, "docs", 1)[0]
}

// eventarcData is the MessagePublishedData body Eventarc sends.
func (p *pubsubSetup) eventarcData(m *pubsub.Message) map[string]any {
	return map[string]any{
		"message": map[string]any{
			"data": m.Data, "attributes": m.Attributes, "messageId": m.ID, "message_id": m.ID,
			"publishTime": m.PublishTime.UTC().Format(time.RFC3339Nano),
		},
		"subscription": p.sub("eventarc"),
	}
}

// deliverBinary posts the event in CloudEvents binary mode: attributes in
// ce-* headers, the data as the body.
func deliverBinary(t *testing.T, url, eventType string, m *pubsub.Message, data map[string]any) int {
	t.Helper()
	body, _ := json.Marshal(data)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-id", m.ID)
	req.Header.Set("ce-source", "//pubsub.googleapis.com/projects/"+e2eProject+"/topics/docs")
	req.Header.Set("ce-time", m.PublishTime.UTC().Format(time.RFC3339Nano))
	if eventType != "" {
		req.Header.Set("ce-type", eventType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
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

	// A valid document reaches the valid topic unchanged, once.
	m := ps.publish(t, good)
	if st := deliverBinary(t, url, pubsubType, m, ps.eventarcData(m)); st/100 != 2 {
		t.Fatalf("delivery: status %d\n%s", st, s.Stdout)
	}
	valid := ps.pullAll(t, "valid", 1)
	if len(valid) != 1 || string(valid[0].Data) != good || valid[0].Attributes["validation"] != "valid" ||
		valid[0].Attributes["origen"] != "pipeline" || valid[0].Attributes["source_message_id"] != m.ID {
		t.Fatalf("valid topic got %d messages: %v", len(valid), valid)
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
	var report struct {
		MessageID  string `json:"message_id"`
		DocumentID string `json:"document_id"`
		Errors     []struct{ Path, Message string }
	}
	if len(invalid) != 1 || json.Unmarshal(invalid[0].Data, &report) != nil || report.MessageID != bad.ID ||
		report.DocumentID != "ley-1" || len(report.Errors) != 1 || report.Errors[0].Path != "/date" {
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
