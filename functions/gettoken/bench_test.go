package gettoken

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"impo.com.uy/copetes/backend/internal/benchcpu"
	"impo.com.uy/copetes/backend/shared/httpapi"
	"impo.com.uy/copetes/backend/shared/logging"
)

// The cached path beside a trivial function, each measured the same way:
// their ratio is the cost of authentication, policy, rate limit, cache
// and audit log. Each benchmark reports cpu-ns/op, the CPU time the
// process spent per request (getrusage): on a machine shared with other
// work, wall time per op follows the neighbours, CPU time much less.
//
//	go test -run '^$' -bench 'Cached|Trivial' -count 6 ./functions/gettoken/
//
// The *HTTP pair serves over a real connection, client and server in
// this process (so cpu-ns/op counts both); the *Handler pair calls the
// handlers directly, which leaves the handler's own work.

// measure runs op in parallel and reports its CPU time per call.
func measure(b *testing.B, op func()) {
	slog.SetDefault(logging.New(io.Discard, slog.LevelInfo, "")) // keep the audit log's cost
	benchcpu.Report(b, benchcpu.Parallel(b, op))
}

func benchServer(b *testing.B, h http.Handler, body, token string) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	measure(b, func() {
		req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	})
}

// discardWriter is a ResponseWriter that keeps nothing but its header.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

func benchHandler(b *testing.B, h http.Handler, body, token string) {
	measure(b, func() {
		req, _ := http.NewRequest("POST", "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
	})
}

// cachedServer is gettoken with a token already cached for ana.
func cachedServer(b *testing.B) (h http.Handler, body, token string) {
	t := &testing.T{}
	src, _ := selfSigned(t)
	ts := newTestServer(t, src, func(c *config) { c.RateLimit = 1 << 40 })
	token = ts.sessionFor(t, "ana", "reader")
	body = `{"scopes":["` + storageRead + `"]}`
	if r := ts.do(t, "POST", ctJSON, body, token); r.Status != 200 {
		b.Fatalf("status %d: %s", r.Status, r.Raw)
	}
	return ts.handler, body, token
}

// trivialFunction is the floor: our middleware around a handler that
// checks the method and answers a constant.
func trivialFunction() http.Handler {
	return httpapi.Handler(func(w http.ResponseWriter, r *http.Request) error {
		if err := httpapi.CheckMethod(w, r, http.MethodPost); err != nil {
			return err
		}
		httpapi.WriteJSON(w, map[string]bool{"ok": true})
		return nil
	})
}

func BenchmarkGetTokenCachedHTTP(b *testing.B) {
	h, body, token := cachedServer(b)
	benchServer(b, h, body, token)
}

func BenchmarkTrivialFunctionHTTP(b *testing.B) {
	benchServer(b, trivialFunction(), `{"scopes":["`+storageRead+`"]}`, "x")
}

func BenchmarkGetTokenCachedHandler(b *testing.B) {
	h, body, token := cachedServer(b)
	benchHandler(b, h, body, token)
}

func BenchmarkTrivialFunctionHandler(b *testing.B) {
	benchHandler(b, trivialFunction(), `{"scopes":["`+storageRead+`"]}`, "x")
}
