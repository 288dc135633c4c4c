package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"impo.com.uy/copetes/backend/internal/secretstest"
	"impo.com.uy/copetes/backend/internal/testclock"
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

// publishedAt reads when the file in dir records key kid as published.
func publishedAt(t *testing.T, dir, kid string) time.Time {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "session-keys"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := session.ReadPublished(data)
	if err != nil {
		t.Fatal(err)
	}
	return pub[kid]
}

// keyIDs lists the kids of the file in dir, the signing key first.
func keyIDs(t *testing.T, dir string) []string {
	t.Helper()
	data, _ := os.ReadFile(filepath.Join(dir, "session-keys"))
	ks, err := session.ParseKeySet(data)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range ks.JWKS().Keys {
		ids = append(ids, k.KeyID)
	}
	return ids
}

// Promoting five minutes after keys add, as the README once said, made
// login sign with a key that verifiers reading its JWKS could not know
// yet: their set can be as old as login's secrets cache, plus an HTTP
// cache's max-age, plus their own JWKS cache. keys promote now refuses
// until that sum has passed since the key was published, says what it
// adds up, and leaves the file as it was.
func TestKeysPromote_WaitsForEveryCacheAfterThePublication(t *testing.T) {
	tests := []struct {
		name                string
		secretsTTL, jwksTTL string
		wait                time.Duration
		says                []string
	}{
		{"defaults", "", "", 15 * time.Minute, []string{"SECRETS_CACHE_TTL de login 5m", "max-age del JWKS de login 5m", "SESSION_JWKS_TTL de los verificadores 5m", "= 15m"}},
		{"as deployed", "1m", "2m", 8 * time.Minute, []string{"SECRETS_CACHE_TTL de login 1m", "SESSION_JWKS_TTL de los verificadores 2m", "= 8m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SECRETS_CACHE_TTL", tt.secretsTTL)
			t.Setenv("SESSION_JWKS_TTL", tt.jwksTTL)
			t.Setenv("SECRETS_SOURCE", "dir") // a local folder's 2 s TTL must not count
			dir := t.TempDir()
			clk := testclock.New(testclock.Start)
			adminAt(t, clk, dir, "keys", "init")
			if _, _, err := adminAt(t, clk, dir, "keys", "add"); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(filepath.Join(dir, "session-keys"))
			newKey := keyIDs(t, dir)[1]

			clk.Advance(tt.wait - time.Second)
			_, _, err := adminAt(t, clk, dir, "keys", "promote")
			if err == nil {
				t.Fatalf("promote %s after the add: accepted, want a refusal until %s", tt.wait-time.Second, tt.wait)
			}
			for _, want := range append(tt.says, newKey, "--force", testclock.Start.Add(tt.wait).Format(time.RFC3339)) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("refusal %q does not say %q", err, want)
				}
			}
			if after, _ := os.ReadFile(filepath.Join(dir, "session-keys")); !bytes.Equal(after, before) {
				t.Fatal("a refused promote changed the file")
			}

			clk.Advance(time.Second)
			if _, _, err := adminAt(t, clk, dir, "keys", "promote"); err != nil {
				t.Fatalf("promote %s after the add: %v", tt.wait, err)
			}
			if got := keyIDs(t, dir); got[0] != newKey {
				t.Fatalf("after promote: %v, want %s first", got, newKey)
			}
		})
	}
}

// keys add records the time in the folder, which is what a local login
// reads; in production the key reaches login with secret push, maybe
// much later. The push records its own time, so that the wait starts
// from the publication, whenever the add was. It records it even when
// the push fails: a push whose answer was lost may have landed.
func TestKeysPromote_WaitsFromThePushNotTheAdd(t *testing.T) {
	srv := secretstest.Start(t)
	srv.Create("impo-test", "session-keys")
	t.Setenv("GOOGLE_CLOUD_PROJECT", "impo-test")
	t.Setenv("SECRETMANAGER_EMULATOR_HOST", srv.Addr)
	t.Setenv("SESSION_KEYS_SECRET", "")
	t.Setenv("SECRETS_CACHE_TTL", "")
	t.Setenv("SESSION_JWKS_TTL", "")
	dir := t.TempDir()
	clk := testclock.New(testclock.Start)
	adminAt(t, clk, dir, "keys", "init")
	adminAt(t, clk, dir, "keys", "add")
	newKey := keyIDs(t, dir)[1]

	clk.Advance(time.Hour) // the operator pushes an hour after adding
	pushedAt := clk.Now()
	if _, _, err := adminAt(t, clk, dir, "secret", "push", "--secret", "session-keys"); err != nil {
		t.Fatal(err)
	}
	if got := publishedAt(t, dir, newKey); !got.Equal(pushedAt) {
		t.Fatalf("after the push the file records %s, want the push's time %s", got, pushedAt)
	}
	// What Secret Manager holds is a set login takes, and the JWKS it
	// would publish carries no record.
	sm, _ := secrets.NewSecretManager(context.Background(), "impo-test", srv.Addr)
	defer sm.Close()
	pushed, err := sm.Secret(context.Background(), "session-keys")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := session.ParseKeySet(pushed)
	if err != nil {
		t.Fatalf("the pushed set: %v", err)
	}
	if jwks, _ := json.Marshal(ks.JWKS()); strings.Contains(string(jwks), "published") {
		t.Fatalf("the JWKS of the pushed set carries the record: %s", jwks)
	}

	clk.Advance(15*time.Minute - time.Second)
	if _, _, err := adminAt(t, clk, dir, "keys", "promote"); err == nil {
		t.Fatal("promote 1 h after the add but less than 15 min after the push: accepted")
	}

	// A failed push (here, to a secret that does not exist) still moves
	// the record to its own time.
	clk.Advance(time.Minute)
	failedAt := clk.Now()
	t.Setenv("SESSION_KEYS_SECRET", "no-such-secret")
	os.Rename(filepath.Join(dir, "session-keys"), filepath.Join(dir, "no-such-secret"))
	if _, _, err := adminAt(t, clk, dir, "secret", "push", "--secret", "no-such-secret"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("push to a missing secret: %v, want ErrNotFound", err)
	}
	os.Rename(filepath.Join(dir, "no-such-secret"), filepath.Join(dir, "session-keys"))
	t.Setenv("SESSION_KEYS_SECRET", "")
	if got := publishedAt(t, dir, newKey); !got.Equal(failedAt) {
		t.Fatalf("after a failed push the file records %s, want the push's time %s", got, failedAt)
	}
	clk.Advance(15 * time.Minute)
	if _, _, err := adminAt(t, clk, dir, "keys", "promote"); err != nil {
		t.Fatalf("promote 15 min after the last push: %v", err)
	}
}

// A set with no record of the key (written by hand, or by an older
// cmd/admin) is refused too; --force promotes it anyway, or any time,
// and says loudly what it breaks.
func TestKeysPromote_ForceSaysWhatItBreaks(t *testing.T) {
	t.Setenv("SECRETS_CACHE_TTL", "")
	t.Setenv("SESSION_JWKS_TTL", "")
	dir := t.TempDir()
	a, _ := session.NewKey()
	b, _ := session.NewKey()
	data, _ := session.MarshalKeySet([]jose.JSONWebKey{a, b})
	os.WriteFile(filepath.Join(dir, "session-keys"), data, 0o600)
	clk := testclock.New(testclock.Start)

	_, _, err := adminAt(t, clk, dir, "keys", "promote")
	if err == nil || !strings.Contains(err.Error(), "no consta cuándo se publicó la clave "+b.KeyID) || !strings.Contains(err.Error(), "15m") {
		t.Fatalf("promote of a key with no record: %v, want a refusal that says the wait", err)
	}
	_, stderr, err := adminAt(t, clk, dir, "keys", "promote", "--force")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "ATENCIÓN: --force") || !strings.Contains(stderr, "rechazará (401)") {
		t.Errorf("stderr %q, want a loud warning of what --force breaks", stderr)
	}
	if got := keyIDs(t, dir); got[0] != b.KeyID {
		t.Fatalf("after promote --force: %v, want %s first", got, b.KeyID)
	}
}

// signers reads which keys of the file in dir sign, as login reads it.
func signers(t *testing.T, dir string) (eddsa, es256 string) {
	t.Helper()
	data, _ := os.ReadFile(filepath.Join(dir, "session-keys"))
	ks, err := session.ParseKeySet(data)
	if err != nil {
		t.Fatal(err)
	}
	return ks.SigningKeyID(jose.EdDSA), ks.SigningKeyID(jose.ES256)
}

// An ES256 key rotates like an EdDSA one, on its own: added last it only
// verifies, promote waits for the caches as for any key, and rotating
// either algorithm never moves the other's signer (an EdDSA promote that
// put its key in front of the ES256 signer would silently stop it).
func TestKeys_ES256RotatesLikeEdDSAAndApart(t *testing.T) {
	t.Setenv("SECRETS_CACHE_TTL", "")
	t.Setenv("SESSION_JWKS_TTL", "")
	dir := t.TempDir()
	clk := testclock.New(testclock.Start)
	step := func(args ...string) string {
		t.Helper()
		_, stderr, err := adminAt(t, clk, dir, args...)
		if err != nil {
			t.Fatalf("admin %v: %v", args, err)
		}
		return stderr
	}
	want := func(when, eddsa, es256 string) {
		t.Helper()
		if e, p := signers(t, dir); e != eddsa || p != es256 {
			t.Fatalf("%s: EdDSA signs %q, ES256 %q; want %q, %q", when, e, p, eddsa, es256)
		}
	}
	step("keys", "init")
	edA := keyIDs(t, dir)[0]

	stderr := step("keys", "add", "--alg", "ES256")
	p1 := keyIDs(t, dir)[1]
	if !strings.Contains(stderr, "keys promote --alg ES256") || !strings.Contains(stderr, p1+" (ES256)") {
		t.Errorf("keys add --alg ES256 said %q, want the key marked ES256 and the promote to run", stderr)
	}
	want("the first ES256 key, added", edA, "")
	if _, _, err := adminAt(t, clk, dir, "keys", "promote", "--alg", "ES256"); err == nil || !strings.Contains(err.Error(), p1) {
		t.Fatalf("promote of the first ES256 key at once: %v, want a refusal until the caches know it", err)
	}
	clk.Advance(15 * time.Minute)
	if stderr := step("keys", "promote", "--alg", "ES256"); !strings.Contains(stderr, "y ES256 "+p1) {
		t.Errorf("promote said %q, want it to name the ES256 signer", stderr)
	}
	want("the first ES256 key, promoted", edA, p1)
	if _, _, err := adminAt(t, clk, dir, "keys", "promote", "--alg", "ES256"); err == nil || !strings.Contains(err.Error(), "ya firma") {
		t.Fatalf("promote of the ES256 key that signs: %v, want a refusal", err)
	}

	step("keys", "add")
	edB := keyIDs(t, dir)[2]
	clk.Advance(15 * time.Minute)
	step("keys", "promote")
	want("EdDSA rotated", edB, p1)

	step("keys", "add", "--alg", "ES256")
	p2 := keyIDs(t, dir)[3]
	want("a second ES256 key, added", edB, p1)
	clk.Advance(15 * time.Minute)
	step("keys", "promote", "--alg", "ES256")
	want("the second ES256 key, promoted", edB, p2)

	step("keys", "retire", "--alg", "ES256")
	step("keys", "retire")
	if got := keyIDs(t, dir); !cmp.Equal(got, []string{p2, edB}) {
		t.Fatalf("after both retires: %v, want [%s %s]", got, p2, edB)
	}
	want("both retired", edB, p2)

	// secret push stamps the set with its ES256 key as it is.
	data, _ := os.ReadFile(filepath.Join(dir, "session-keys"))
	stamped, err := stampPublished(data, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ks, err := session.ParseKeySet(stamped); err != nil || ks.SigningKeyID(jose.ES256) != p2 {
		t.Fatalf("the stamped set: %v; want its ES256 key to sign still", err)
	}

	step("keys", "retire", "--alg", "ES256", "--keep", "0")
	if got := keyIDs(t, dir); !cmp.Equal(got, []string{edB}) {
		t.Fatalf("after retire --alg ES256 --keep 0: %v, want [%s]", got, edB)
	}
}

func TestKeys_RefuseWhatCannotBeDone(t *testing.T) {
	t.Setenv("SECRETS_CACHE_TTL", "")
	t.Setenv("SESSION_JWKS_TTL", "")
	dir := t.TempDir()
	clk := testclock.New(testclock.Start)
	adminAt(t, clk, dir, "keys", "init")
	before, _ := os.ReadFile(filepath.Join(dir, "session-keys"))
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "add", "--alg", "RS256"}, "use EdDSA o ES256"},
		{[]string{"keys", "add", "--alg", "es256"}, "use EdDSA o ES256"},
		{[]string{"keys", "add", "ES256"}, "argumento de más"},
		{[]string{"keys", "promote"}, "ya firma"},
		{[]string{"keys", "promote", "--alg", "ES256"}, "no hay claves ES256"},
		{[]string{"keys", "retire", "--keep", "0"}, "entre 1 y 1"},
		{[]string{"keys", "retire", "--alg", "ES256", "--keep", "0"}, "no hay claves ES256"},
	} {
		if _, _, err := adminAt(t, clk, dir, tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("admin %v: %v, want a refusal saying %q", tt.args, err, tt.want)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "session-keys")); !bytes.Equal(after, before) {
		t.Error("a refused command changed the file")
	}
}
