package login

import (
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"

	"impo.com.uy/copetes/backend/internal/benchcpu"
	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/httpapi"
	"impo.com.uy/copetes/backend/shared/logging"
	"impo.com.uy/copetes/backend/shared/password"
)

// BenchmarkLogin is one JSON login through the whole handler at the
// configured argon2id cost (OWASP's floor): lock-out bookkeeping, the
// accounts secret, the hash, signing. cpu-ns/op counts the collector's
// work on other processors too (the hash's 19 MiB are garbage after it),
// which is what bounds logins per core.
func BenchmarkLogin(b *testing.B) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	ts := newTestServer(&testing.T{}, nil)
	ts.cfg.PerAccount.Threshold = 1 << 40 // measure logins, not lock-outs
	body := loginJSON("ana", "ana-secret-pw")
	b.ReportAllocs()
	start := benchcpu.Now()
	for b.Loop() {
		if r := ts.do("POST", "/token", ctJSON, body); r.Status != 200 {
			b.Fatalf("login: %d %s", r.Status, r.Body)
		}
	}
	benchcpu.ReportRate(b, start, "logins")
}

// BenchmarkArgon2id is the baseline: the bare hash at the same cost.
func BenchmarkArgon2id(b *testing.B) {
	p := password.Default
	salt := make([]byte, 16)
	b.ReportAllocs()
	start := benchcpu.Now()
	for b.Loop() {
		argon2.IDKey([]byte("ana-secret-pw"), salt, p.Time, p.Memory, p.Threads, 32)
	}
	benchcpu.ReportRate(b, start, "hashes")
}

// The client-credentials grant over real HTTP, beside a trivial function
// served the same way (same server, middleware, client and concurrency):
// their ratio is what authenticating a service and signing its session
// cost. cpu-ns/op is the process's CPU time (server and client: an upper
// bound on the server's) per request, from getrusage, which a loaded
// machine disturbs far less than wall time; grants/s/core is its inverse.

const clientCredentialsForm = "grant_type=client_credentials"

var pipelineBasic = "Basic " + base64.StdEncoding.EncodeToString([]byte("pipeline:pipeline-client-secret"))

func BenchmarkClientCredentialsHTTP(b *testing.B) {
	slog.SetDefault(logging.New(io.Discard, slog.LevelInfo, "")) // keep the log line's cost
	ts := newTestServer(&testing.T{}, nil)
	benchHTTP(b, ts.routes(), "grants")
}

// BenchmarkClientCredentialsArgon2idHTTP is the same grant for a service
// whose secret is still an argon2id hash, as every service's was before
// digests: what the grant cost then.
func BenchmarkClientCredentialsArgon2idHTTP(b *testing.B) {
	slog.SetDefault(logging.New(io.Discard, slog.LevelInfo, ""))
	ts := newTestServer(&testing.T{}, nil)
	list, err := accounts.Unmarshal(accountsJSON)
	if err != nil {
		b.Fatal(err)
	}
	for i := range list {
		if list[i].Name == "pipeline" {
			list[i].Hash, _ = password.Hash([]byte("pipeline-client-secret"), password.Default)
		}
	}
	data, err := accounts.Marshal(list)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts.dir, "accounts"), data, 0o600); err != nil {
		b.Fatal(err)
	}
	benchHTTP(b, ts.routes(), "grants")
}

func BenchmarkTrivialFunctionHTTP(b *testing.B) {
	slog.SetDefault(logging.New(io.Discard, slog.LevelInfo, ""))
	trivial := httpapi.Handler(func(w http.ResponseWriter, r *http.Request) error {
		if err := httpapi.CheckMethod(w, r, http.MethodPost); err != nil {
			return err
		}
		httpapi.WriteJSON(w, map[string]bool{"ok": true})
		return nil
	})
	benchHTTP(b, trivial, "requests")
}

func benchHTTP(b *testing.B, h http.Handler, unit string) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	start := benchcpu.Parallel(b, func() {
		req, _ := http.NewRequest("POST", srv.URL+"/token", strings.NewReader(clientCredentialsForm))
		req.Header.Set("Content-Type", ctForm)
		req.Header.Set("Authorization", pipelineBasic)
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
	benchcpu.ReportRate(b, start, unit)
}
