package validate

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"impo.com.uy/copetes/backend/internal/benchcpu"
	"impo.com.uy/copetes/backend/internal/legaltext"
)

// rawEvent is a messagePublished event whose data is text, as written.
func rawEvent(t testing.TB, contentType, text string) event.Event {
	e := event.New()
	e.SetID("e1")
	e.SetType(MessagePublishedType)
	e.SetSource("//pubsub.googleapis.com/projects/p/topics/t")
	if err := e.SetData(contentType, []byte(text)); err != nil {
		t.Fatal(err)
	}
	return e
}

// sameAsDataAs fails t when readMessage reads e otherwise than DataAs;
// it reports whether the fast reading was taken.
func sameAsDataAs(t *testing.T, e event.Event) bool {
	t.Helper()
	var want messagePublished
	wantErr := e.DataAs(&want)
	got, err := readMessage(e)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("readMessage: %v; DataAs: %v", err, wantErr)
	}
	if want.Message != nil && got.Message != nil {
		// cmp would compare a document of megabytes byte by byte.
		if !bytes.Equal(want.Message.Data, got.Message.Data) || (want.Message.Data == nil) != (got.Message.Data == nil) {
			t.Fatalf("data: readMessage %q, DataAs %q", got.Message.Data, want.Message.Data)
		}
		wm, gm := *want.Message, *got.Message
		wm.Data, gm.Data = nil, nil
		want.Message, got.Message = &wm, &gm
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("readMessage (-DataAs +readMessage):\n%s", diff)
	}
	_, fast := readMessageFast(e)
	return fast
}

// TestReadMessage_AsDataAs: readMessage reads what DataAs reads, taking
// the fast reading for the messages Eventarc writes and leaving the rest
// to DataAs.
func TestReadMessage_AsDataAs(t *testing.T) {
	const msg = `"attributes":{"origen":"pipeline"},"messageId":"m1","publishTime":"2026-11-27T10:00:00.5Z","orderingKey":"k"`
	for _, tt := range []struct {
		name, contentType, text string
		fast                    bool
	}{
		{"as Eventarc writes it", "application/json", `{"message":{"data":"eyJhIjoxfQ==",` + msg + `},"subscription":"projects/p/subscriptions/s"}`, true},
		{"data last", "application/json", `{"subscription":"s","message":{` + msg + `,"data":"eyJhIjoxfQ=="}}`, true},
		{"no content type", "", `{"message":{"data":"eyJhIjoxfQ=="}}`, true},
		{"text/json", "text/json", `{"message":{"data":"eyJhIjoxfQ=="}}`, true},
		{"parameters", "application/json; charset=utf-8", `{"message":{"data":"eyJhIjoxfQ=="}}`, true},
		{"empty data", "application/json", `{"message":{"data":""}}`, true},
		{"other objects with data", "application/json", `{"x":{"data":"bm8="},"message":{"attributes":{"data":"x"},"data":"eyJhIjoxfQ=="},"y":{"data":1}}`, true},
		{"escaped base64", "application/json", `{"message":{"data":"eyJh\u0049joxfQ=="}}`, false},
		{"data in another case", "application/json", `{"message":{"Data":"eyJhIjoxfQ=="}}`, false},
		{"data twice, another case", "application/json", `{"message":{"data":"eyJhIjoxfQ==","DATA":"bm8="}}`, false},
		{"message in another case", "application/json", `{"Message":{"data":"eyJhIjoxfQ=="}}`, false},
		{"message with a long s", "application/json", `{"meſſage":{"data":"eyJhIjoxfQ=="}}`, false},
		{"message twice", "application/json", `{"message":{"data":"eyJhIjoxfQ=="},"message":{"data":"bm8="}}`, false},
		{"escaped key", "application/json", `{"m\u0065ssage":{"data":"eyJhIjoxfQ=="}}`, false},
		{"bad base64", "application/json", `{"message":{"data":"eyJhI*oxfQ=="}}`, false},
		{"data not a string", "application/json", `{"message":{"data":12}}`, false},
		{"data null", "application/json", `{"message":{"data":null}}`, false},
		{"no data", "application/json", `{"message":{"messageId":"m1"}}`, false},
		{"message null", "application/json", `{"message":null}`, false},
		{"no message", "application/json", `{"subscription":"s"}`, false},
		{"message not an object", "application/json", `{"message":[1]}`, false},
		{"attributes of the wrong type", "application/json", `{"message":{"data":"eyJhIjoxfQ==","attributes":{"a":1}}}`, false},
		{"bad time", "application/json", `{"message":{"data":"eyJhIjoxfQ==","publishTime":"yesterday"}}`, false},
		{"invalid UTF-8", "application/json", "{\"message\":{\"data\":\"eyJhIjoxfQ==\",\"messageId\":\"\xff\"}}", false},
		{"not JSON", "application/json", `{"message":`, false},
		{"XML", "application/xml", `<message/>`, false},
		{"plain text", "text/plain", `{"message":{"data":"eyJhIjoxfQ=="}}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if fast := sameAsDataAs(t, rawEvent(t, tt.contentType, tt.text)); fast != tt.fast {
				t.Errorf("fast reading: %v, want %v", fast, tt.fast)
			}
		})
	}
}

func TestReadMessage_LargeDocuments(t *testing.T) {
	for name, doc := range legaltext.Documents() {
		e := rawEvent(t, "application/json", string(eventarcBody("m1", doc)))
		if !sameAsDataAs(t, e) {
			t.Errorf("%s: not read the fast way", name)
		}
	}
}

// FuzzReadMessage: whatever the data, readMessage reads it as DataAs
// does.
func FuzzReadMessage(f *testing.F) {
	f.Add(`{"message":{"data":"eyJhIjoxfQ==","attributes":{"a":"b"},"messageId":"m1","publishTime":"2026-11-27T10:00:00Z"},"subscription":"s"}`)
	f.Add(`{"message":{"data":"eyJh\/IjoxfQ==","DaTa":""}}`)
	f.Add(`{"x":{"message":{"data":"bm8="}},"message":{"data":"eQ"}}`)
	f.Add(strings.Repeat(`{"message":`, 3) + `{"data":"eQ=="}}}}`)
	f.Fuzz(func(t *testing.T, text string) {
		sameAsDataAs(t, rawEvent(t, "application/json", text))
	})
}

// BenchmarkReadMessage reads the message of an Eventarc event;
// BenchmarkDataAs is the baseline, the SDK's reading.
func BenchmarkReadMessage(b *testing.B) {
	benchRead(b, func(e event.Event) (messagePublished, error) { return readMessage(e) })
}

func BenchmarkDataAs(b *testing.B) {
	benchRead(b, func(e event.Event) (m messagePublished, err error) { return m, e.DataAs(&m) })
}

func benchRead(b *testing.B, read func(event.Event) (messagePublished, error)) {
	docs := legaltext.Documents()
	for _, name := range legaltext.Sizes {
		e := rawEvent(b, "application/json", string(eventarcBody("m1", docs[name])))
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(docs[name])))
			start := benchcpu.Now()
			for b.Loop() {
				if m, err := read(e); err != nil || len(m.Message.Data) != len(docs[name]) {
					b.Fatal(err)
				}
			}
			benchcpu.Report(b, start)
		})
	}
}
