package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"impo.com.uy/copetes/backend/internal/secretstest"
	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/session"
)

// mismatchedKeys is a session-keys file whose one key pairs the seed of
// one Ed25519 key with the public half of another.
func mismatchedKeys(t *testing.T) []byte {
	t.Helper()
	_, privA, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubB, _, _ := ed25519.GenerateKey(rand.Reader)
	return fmt.Appendf(nil, `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","alg":"EdDSA","use":"sig","d":%q,"x":%q}]}`,
		base64.RawURLEncoding.EncodeToString(privA.Seed()), base64.RawURLEncoding.EncodeToString(pubB))
}

// A key file whose private half did not match its public half used to be
// pushed as is: login then issued tokens that no verifier accepted. The
// push now refuses it before anything reaches Secret Manager, and says why.
func TestSecretPush_RefusesAKeyWhosePrivateHalfDoesNotMatch(t *testing.T) {
	srv := secretstest.Start(t)
	srv.Create("impo-test", "session-keys")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "session-keys"), mismatchedKeys(t), 0o600)
	t.Setenv("GOOGLE_CLOUD_PROJECT", "impo-test")
	t.Setenv("SECRETMANAGER_EMULATOR_HOST", srv.Addr)
	t.Setenv("SESSION_KEYS_SECRET", "")

	out, err := admin(t, dir, "", "secret", "push", "--secret", "session-keys")
	if err == nil || !errors.Is(err, session.ErrKeyMismatch) || !strings.Contains(err.Error(), "no corresponde a la pública") {
		t.Fatalf("push of a mismatched key: stdout %q, %v; want a refusal that explains the mismatch", out, err)
	}
	sm, _ := secrets.NewSecretManager(context.Background(), "impo-test", srv.Addr)
	defer sm.Close()
	if _, err := sm.Secret(context.Background(), "session-keys"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("after the refused push, the secret reads %v; want no version at all", err)
	}
}

// The key commands refuse to build on a broken file (and leave it as it
// is): adding a good key would not make the broken one sign correctly.
func TestKeys_RefuseABrokenFile(t *testing.T) {
	dir := t.TempDir()
	broken := mismatchedKeys(t)
	path := filepath.Join(dir, "session-keys")
	os.WriteFile(path, broken, 0o600)
	for _, args := range [][]string{{"keys", "add"}, {"keys", "promote"}, {"keys", "retire"}} {
		_, err := admin(t, dir, "", args...)
		if !errors.Is(err, session.ErrKeyMismatch) || !strings.Contains(err.Error(), path) {
			t.Errorf("admin %v: %v; want a refusal naming %s", args, err, path)
		}
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, broken) {
		t.Error("a refused command changed the file")
	}
}
