package entrypoint

import (
	"bytes"
	"net/http"
	"strconv"
	"sync"
)

// heldLimit is the largest response held whole; the functions' answers
// are small JSON documents, far below it.
const heldLimit = 1 << 20

// heldResponse keeps a handler's response until the handler returns, then
// sends it in one piece, with its Content-Length, and flushes it to the
// connection.
//
// Why: net/http finishes a response (its last chunk, the flush of its
// buffer to the socket) only after the handler returns, and in production
// the server is the Functions Framework's, whose end entrypoint cannot
// wait for. A process that exited as soon as its last handler returned
// could cut the tail of that handler's answer. Held, an answer is on the
// wire before its request counts as done. A handler that flushes, or that
// writes more than heldLimit, streams as it would without this, and loses
// that guarantee.
//
// It costs a request little: the body goes to a pooled buffer, and the
// header is not copied. The handler writes it where net/http reads it;
// from WriteHeader on, Header returns a map of its own, so that what the
// handler sets later is not sent, as in net/http. One difference: a
// handler that kept the map Header returned before WriteHeader and
// changes it afterwards changes what is sent (net/http would have sent a
// copy). No handler here does; keep it so.
type heldResponse struct {
	w         http.ResponseWriter
	status    int           // 0 until the handler writes a header or a body
	late      http.Header   // what Header returns once the status is held
	body      *bytes.Buffer // from bodies, on the first write
	streaming bool
}

// bodies are the buffers held bodies go to. Those that grew past
// pooledBody are left to the collector, so that one large answer does
// not stay in memory.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const pooledBody = 64 << 10

// Header implements http.ResponseWriter.
func (h *heldResponse) Header() http.Header {
	if h.status != 0 && !h.streaming {
		if h.late == nil {
			h.late = http.Header{}
		}
		return h.late
	}
	return h.w.Header()
}

// WriteHeader implements http.ResponseWriter.
func (h *heldResponse) WriteHeader(code int) {
	switch {
	case h.streaming:
		h.w.WriteHeader(code)
	case code >= 100 && code < 200 && code != http.StatusSwitchingProtocols:
		h.w.WriteHeader(code) // informational (103 Early Hints): sent at once, as net/http does
	case h.status == 0:
		h.status = code
	}
}

// Write implements http.ResponseWriter.
func (h *heldResponse) Write(p []byte) (int, error) {
	if h.status == 0 && !h.streaming {
		h.WriteHeader(http.StatusOK)
	}
	if !h.streaming && h.held()+len(p) > heldLimit {
		h.stream()
	}
	if h.streaming {
		return h.w.Write(p)
	}
	if h.body == nil {
		h.body = bodies.Get().(*bytes.Buffer)
	}
	return h.body.Write(p)
}

// held is the length of the body held so far.
func (h *heldResponse) held() int {
	if h.body == nil {
		return 0
	}
	return h.body.Len()
}

// FlushError lets http.ResponseController flush: the response streams
// from then on.
func (h *heldResponse) FlushError() error {
	h.stream()
	return http.NewResponseController(h.w).Flush()
}

// Flush implements http.Flusher, for handlers that assert it.
func (h *heldResponse) Flush() { h.FlushError() }

// Unwrap gives http.ResponseController the connection's writer, for
// deadlines and full duplex.
func (h *heldResponse) Unwrap() http.ResponseWriter { return h.w }

// stream sends what is held and passes what follows straight through.
func (h *heldResponse) stream() {
	if h.streaming {
		return
	}
	h.streaming = true
	if h.status == 0 {
		return
	}
	h.w.WriteHeader(h.status)
	h.sendBody()
}

// sendBody writes the held body and returns its buffer to the pool.
func (h *heldResponse) sendBody() {
	if h.body == nil {
		return
	}
	if h.body.Len() > 0 {
		h.w.Write(h.body.Bytes())
	}
	if h.body.Cap() <= pooledBody {
		h.body.Reset()
		bodies.Put(h.body)
	}
	h.body = nil
}

// finish sends the held response whole and flushes it to the connection;
// closeConn asks the client not to reuse the connection (the process is
// going away). Call it once the handler has returned without panicking.
func (h *heldResponse) finish(closeConn bool) {
	if !h.streaming {
		if h.status == 0 {
			h.status = http.StatusOK
		}
		hdr := h.w.Header()
		// A handler that gave up on a body larger than it accepts (413,
		// usually through http.MaxBytesReader) closes the connection
		// rather than read the rest: net/http does so by itself only when
		// the ResponseWriter is its own.
		if closeConn || h.status == http.StatusRequestEntityTooLarge {
			hdr["Connection"] = []string{"close"}
		}
		if bodyAllowed(h.status) && len(hdr["Content-Length"]) == 0 && len(hdr["Transfer-Encoding"]) == 0 {
			hdr["Content-Length"] = []string{strconv.Itoa(h.held())}
		}
		h.w.WriteHeader(h.status)
		h.sendBody()
	}
	http.NewResponseController(h.w).Flush()
}

// bodyAllowed reports whether a response with status may carry a body
// (RFC 9110 §6.4.1).
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
