package login

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/internal/logtest"
	"impo.com.uy/copetes/backend/shared/platform"
	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/store"
)

func startPlatform(src secrets.Source) *platform.Platform {
	st := store.NewMemory(time.Now)
	return &platform.Platform{Secrets: src, Store: st, Sessions: st}
}

// A session-keys file whose private key does not match its public key
// used to start a login that signed with one key and published the
// other: every token it issued was refused by every verifier. Its build
// now refuses, so entrypoint answers 500 "misconfigured" and logs why.
func TestBuild_RefusesSigningKeysThatDoNotMatch(t *testing.T) {
	t.Setenv("SESSION_KEYS_SECRET", "session-keys")
	dir := t.TempDir()
	writeCredentials(t, dir)
	_, privA, _ := ed25519.GenerateKey(rand.Reader)
	pubB, _, _ := ed25519.GenerateKey(rand.Reader)
	d := base64.RawURLEncoding.EncodeToString(privA.Seed())
	mismatched := fmt.Sprintf(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","d":%q,"x":%q}]}`,
		d, base64.RawURLEncoding.EncodeToString(pubB))
	os.WriteFile(filepath.Join(dir, "session-keys"), []byte(mismatched), 0o600)

	_, err := build(context.Background(), startPlatform(secrets.Dir{Path: dir}))
	if !errors.Is(err, secrets.ErrMalformed) || !strings.Contains(err.Error(), "does not match its public half") {
		t.Fatalf("build = %v, want a refusal saying the key halves do not match", err)
	}
	if !strings.Contains(err.Error(), `"session-keys"`) || !strings.Contains(err.Error(), `kid "k1"`) {
		t.Errorf("error %q does not name the secret and the key", err)
	}
	if strings.Contains(err.Error(), d) {
		t.Error("the error holds the private key")
	}
}

// A key-store outage at start is not a misconfiguration: login starts,
// and its requests answer 503 until the keys can be read.
func TestBuild_StartsThroughAnOutage(t *testing.T) {
	t.Setenv("SESSION_KEYS_SECRET", "session-keys")
	log := logtest.Capture(t)
	h, err := build(context.Background(), startPlatform(outage{}))
	if err != nil {
		t.Fatalf("build during an outage: %v", err)
	}
	if len(log.Messages("cannot read the signing keys at start; each request will try again")) != 1 {
		t.Errorf("no WARNING about the keys at start:\n%s", log.String())
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/jwks", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("GET /jwks during the outage: %d, want 503", rec.Code)
	}
}

func TestBuild_StartsWithGoodKeys(t *testing.T) {
	t.Setenv("SESSION_KEYS_SECRET", "session-keys")
	dir := t.TempDir()
	writeCredentials(t, dir)
	h, err := build(context.Background(), startPlatform(secrets.Dir{Path: dir}))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/jwks", nil))
	var set struct{ Keys []map[string]any }
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &set) != nil || len(set.Keys) != 1 {
		t.Fatalf("GET /jwks: %d %s", rec.Code, rec.Body)
	}
}

// outage is a secret store that cannot be reached.
type outage struct{}

func (outage) Secret(_ context.Context, name string) ([]byte, error) {
	return nil, fmt.Errorf("secret %q: %w", name, secrets.ErrUnavailable)
}
