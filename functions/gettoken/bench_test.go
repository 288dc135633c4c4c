package gettoken

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"impo.com.uy/copetes/backend/shared/httpapi"
	"impo.com.uy/copetes/backend/shared/logging"
)

// The cached path over real HTTP, beside a trivial function served the
// same way (same server, same middleware, same client): their ratio is the
// cost of authentication, policy, rate limit, cache and audit log.

func benchServer(b *testing.B, h http.Handler, body, token string) {
	slog.SetDefault(logging.New(io.Discard, slog.LevelInfo, "")) // keep the audit log's cost
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
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
		}
	})
}

func BenchmarkGetTokenCachedHTTP(b *testing.B) {
	t := &testing.T{}
	src, _ := selfSigned(t)
	ts := newTestServer(t, src, func(c *config) { c.RateLimit = 1 << 40 })
	tok := ts.sessionFor(t, "ana", "reader")
	benchServer(b, ts.handler, `{"scopes":["`+storageRead+`"]}`, tok)
}

func BenchmarkTrivialFunctionHTTP(b *testing.B) {
	trivial := httpapi.Handler(func(w http.ResponseWriter, r *http.Request) error {
		if err := httpapi.CheckMethod(w, r, http.MethodPost); err != nil {
			return err
		}
		httpapi.WriteJSON(w, map[string]bool{"ok": true})
		return nil
	})
	benchServer(b, trivial, `{"scopes":["`+storageRead+`"]}`, "x")
}
