package validate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"

	"impo.com.uy/copetes/backend/internal/benchcpu"
	"impo.com.uy/copetes/backend/internal/legaltext"
	"impo.com.uy/copetes/backend/shared/logging"
	"impo.com.uy/copetes/backend/shared/store"
)

// eventarcBody is the body of the request Eventarc makes for a Pub/Sub
// message (binary mode: the CloudEvent attributes are ce- headers).
func eventarcBody(id string, doc []byte) []byte {
	b, _ := json.Marshal(map[string]any{
		"message": map[string]any{
			"data": doc, "messageId": id, "publishTime": time.Now().UTC().Format(time.RFC3339Nano),
			"attributes": map[string]string{"origen": "pipeline"},
		},
		"subscription": "projects/" + project + "/subscriptions/validate",
	})
	return b
}

// serveEvents serves fn over HTTP as the Functions Framework serves a
// CloudEvent function (cloudevents' receive handler).
func serveEvents(b *testing.B, fn func(context.Context, event.Event) error) http.Handler {
	p, err := cloudevents.NewHTTP()
	if err != nil {
		b.Fatal(err)
	}
	h, err := cloudevents.NewHTTPReceiveHandler(context.Background(), p, fn)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// benchEvents posts each document, as Eventarc would, to h, a new
// message id each time so that none is a duplicate.
func benchEvents(b *testing.B, h http.Handler) {
	docs := legaltext.Documents()
	old := slog.Default()
	slog.SetDefault(logging.New(io.Discard, slog.LevelInfo, project))
	b.Cleanup(func() { slog.SetDefault(old) })
	n := 0
	for _, name := range legaltext.Sizes {
		data := docs[name]
		// Each request carries a new message id, written over the
		// digits of this one, so that none is a duplicate.
		const idTemplate = "m0000000000"
		body := eventarcBody(idTemplate, data)
		at := bytes.Index(body, []byte(idTemplate))
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			start := benchcpu.Now()
			for b.Loop() {
				n++
				id := fmt.Sprintf("m%010d", n)
				copy(body[at:], id)
				req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Ce-Specversion", "1.0")
				req.Header.Set("Ce-Type", MessagePublishedType)
				req.Header.Set("Ce-Source", "//pubsub.googleapis.com/projects/"+project+"/topics/documentos")
				req.Header.Set("Ce-Id", id)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code/100 != 2 {
					b.Fatal(w.Code, w.Body.String())
				}
			}
			benchcpu.Report(b, start)
		})
	}
}

// BenchmarkValidateEvent is a Pub/Sub message through the whole Validate
// entry point, from the HTTP request Eventarc makes to the routing
// decision (with no topics configured, so no publish).
func BenchmarkValidateEvent(b *testing.B) {
	v, version, err := newValidator()
	if err != nil {
		b.Fatal(err)
	}
	r, err := newRouter(context.Background(), v, version, store.NewMemory(nil))
	if err != nil {
		b.Fatal(err)
	}
	benchEvents(b, serveEvents(b, eventFace{router: r}.handle))
}

// BenchmarkUnmarshalEvent is the floor: the same requests to a function
// that only decodes the message as the SDK offers (DataAs) and
// json.Unmarshals its document.
func BenchmarkUnmarshalEvent(b *testing.B) {
	benchEvents(b, serveEvents(b, func(_ context.Context, e event.Event) error {
		var m messagePublished
		if err := e.DataAs(&m); err != nil {
			return err
		}
		var doc map[string]any
		return json.Unmarshal(m.Message.Data, &doc)
	}))
}

// BenchmarkUnmarshal is the row's baseline: json.Unmarshal of the
// document alone.
func BenchmarkUnmarshal(b *testing.B) { legaltext.BenchmarkUnmarshal(b) }
