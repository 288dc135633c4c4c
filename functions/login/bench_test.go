package login

import (
	"log/slog"
	"testing"

	"golang.org/x/crypto/argon2"

	"impo.com.uy/copetes/backend/shared/password"
)

// BenchmarkLogin is one JSON login through the whole handler at the
// configured argon2id cost (OWASP's floor): lock-out bookkeeping, the
// accounts secret, the hash, signing.
func BenchmarkLogin(b *testing.B) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	ts := newTestServer(&testing.T{}, nil)
	ts.cfg.PerAccount.Threshold = 1 << 40 // measure logins, not lock-outs
	body := loginJSON("ana", "ana-secret-pw")
	b.ReportAllocs()
	for b.Loop() {
		if r := ts.do("POST", "/token", ctJSON, body); r.Status != 200 {
			b.Fatalf("login: %d %s", r.Status, r.Body)
		}
	}
}

// BenchmarkArgon2id is the baseline: the bare hash at the same cost.
func BenchmarkArgon2id(b *testing.B) {
	p := password.Default
	salt := make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		argon2.IDKey([]byte("ana-secret-pw"), salt, p.Time, p.Memory, p.Threads, 32)
	}
}
