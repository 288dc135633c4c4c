package entrypoint

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/shared/httpapi"
)

// TestHeldResponse_CompleteOnTheWireBeforeTheHandlerReturns reads each
// answer while the handler that wrote it has not returned yet: net/http
// has not finished the response, so everything the client reads was sent
// by finish. If it failed, a process that exits when its last handler
// returns (entrypoint's drain, under the Functions Framework) could cut
// the tail of an answer.
func TestHeldResponse_CompleteOnTheWireBeforeTheHandlerReturns(t *testing.T) {
	for _, tc := range []struct {
		name     string
		handler  http.HandlerFunc
		closing  bool
		status   int
		body     string
		close    bool   // the answer says Connection: close
		noHeader string // a header that must not be sent
	}{
		{name: "JSON", handler: func(w http.ResponseWriter, r *http.Request) {
			httpapi.WriteJSON(w, map[string]string{"access_token": "x"})
		}, status: 200, body: `{"access_token":"x"}` + "\n"},
		{name: "nothing written", handler: func(http.ResponseWriter, *http.Request) {}, status: 200},
		{name: "no content", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}, status: 204},
		{name: "header set after WriteHeader is not sent, as in net/http", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			w.Header().Set("X-Late", "1")
			io.WriteString(w, "ok")
		}, status: 202, body: "ok", noHeader: "X-Late"},
		{name: "a body too large closes the connection", handler: func(w http.ResponseWriter, r *http.Request) {
			httpapi.WriteProblem(w, r, httpapi.Errorf(http.StatusRequestEntityTooLarge, "too large"))
		}, status: 413, close: true},
		{name: "while draining", handler: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		}, closing: true, status: 200, body: "ok", close: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hw := &heldResponse{w: w}
				tc.handler(hw, r)
				hw.finish(tc.closing)
				<-release // net/http finishes the response only after this
			}))
			defer srv.Close()
			defer close(release)
			var got result
			select {
			case got = <-get(srv.URL):
			case <-time.After(guard):
				t.Fatal("the answer was not whole on the wire when the handler was done with it")
			}
			if got.err != nil {
				t.Fatal(got.err)
			}
			resp, body := got.resp, got.body
			if resp.StatusCode != tc.status || (tc.body != "" && string(body) != tc.body) {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
			if resp.Close != tc.close {
				t.Errorf("Connection: close is %v, want %v", resp.Close, tc.close)
			}
			if tc.noHeader != "" && resp.Header.Get(tc.noHeader) != "" {
				t.Errorf("%s was sent", tc.noHeader)
			}
		})
	}
}

// A handler that flushes, or writes more than heldLimit, streams: its
// answer is whole, only no longer held.
func TestHeldResponse_StreamsWhenFlushedOrLarge(t *testing.T) {
	large := strings.Repeat("x", heldLimit+1)
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		body    string
	}{
		{"flushed", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "first ")
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Error(err)
			}
			io.WriteString(w, "second")
		}, "first second"},
		{"large", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, large) }, large},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			hw := &heldResponse{w: rec}
			tc.handler(hw, httptest.NewRequest("GET", "/", nil))
			if !rec.Flushed && rec.Body.Len() == 0 {
				t.Error("nothing reached the connection before the handler returned")
			}
			hw.finish(false)
			if rec.Body.String() != tc.body {
				t.Errorf("body of %d bytes, want %d", rec.Body.Len(), len(tc.body))
			}
		})
	}
}

// Held bodies share pooled buffers: each answer carries its own body and
// Content-Length, whatever was held before it.
func TestHeldResponse_EachAnswerHasItsOwnBody(t *testing.T) {
	for _, body := range []string{strings.Repeat("long answer ", 100), "short", "", "x"} {
		rec := httptest.NewRecorder()
		hw := &heldResponse{w: rec}
		io.WriteString(hw, body)
		hw.finish(false)
		if rec.Body.String() != body || rec.Header().Get("Content-Length") != strconv.Itoa(len(body)) {
			t.Fatalf("answer %q with Content-Length %s, want %q", rec.Body, rec.Header().Get("Content-Length"), body)
		}
	}
}
