package session

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
)

// BenchmarkVerify is a whole first verification: header checks,
// signature, claims, and the revocation lookup in the memory store.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(&testing.T{})
	token, _, err := f.issuer.Issue(context.Background(), "ana", "user", []string{"editor"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		f.verifier.seen.drop(token) // forget it: every round is a first sight
		if _, err := f.verifier.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifySeen is the same token again: the signature is skipped;
// expiry, key and revocation are checked.
func BenchmarkVerifySeen(b *testing.B) {
	f := newFixture(&testing.T{})
	token, _, _ := f.issuer.Issue(context.Background(), "ana", "user", []string{"editor"})
	ctx := context.Background()
	f.verifier.Verify(ctx, token)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.verifier.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
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
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}
