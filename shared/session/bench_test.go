package session

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"

	"impo.com.uy/copetes/backend/internal/benchcpu"
)

// The first verification of a token beside its floor, a bare
// ed25519.Verify of the same token. Each reports cpu-ns/op, the CPU time
// the process spent per verification (getrusage, collector included),
// steadier than wall time on a shared machine:
//
//	go test -run '^$' -bench 'Verify|Ed25519' -count 6 ./shared/session/

// loop runs op b.N times and reports its CPU time per call.
func loop(b *testing.B, op func()) {
	b.ReportAllocs()
	start := benchcpu.Now()
	for b.Loop() {
		op()
	}
	benchcpu.Report(b, start)
}

// BenchmarkVerify is a whole first verification: header checks,
// signature, claims, and the revocation lookup in the memory store.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(&testing.T{})
	token, _, err := f.issuer.Issue(context.Background(), "ana", "user", []string{"editor"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	loop(b, func() {
		f.verifier.seen.drop(token) // forget it: every round is a first sight
		if _, err := f.verifier.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkVerifySeen is the same token again: the signature is skipped;
// expiry, key and revocation are checked.
func BenchmarkVerifySeen(b *testing.B) {
	f := newFixture(&testing.T{})
	token, _, _ := f.issuer.Issue(context.Background(), "ana", "user", []string{"editor"})
	ctx := context.Background()
	f.verifier.Verify(ctx, token)
	loop(b, func() {
		if _, err := f.verifier.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkEd25519Verify is the baseline: the signature check alone, on
// the same token, which no verifier can go below.
func BenchmarkEd25519Verify(b *testing.B) {
	f := newFixture(&testing.T{})
	token, _, _ := f.issuer.Issue(context.Background(), "ana", "user", []string{"editor"})
	i := strings.LastIndex(token, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(token[i+1:])
	msg := []byte(token[:i])
	pub := f.keys.PublicKeys()[f.kid]
	loop(b, func() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	})
}
