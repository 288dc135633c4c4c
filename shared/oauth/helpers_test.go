package oauth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/internal/emulators"
	"impo.com.uy/copetes/backend/internal/testclock"
	"impo.com.uy/copetes/backend/shared/oauth"
	"impo.com.uy/copetes/backend/shared/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	emulators.Stop()
	os.Exit(code)
}

var ctx = context.Background()

// recorder is a real store that notes every key and record written to
// it, so that tests can look for a secret in them; fail, when set, is
// what every call returns instead (an outage).
type recorder struct {
	store.Store
	mu      sync.Mutex
	written []string // keys and Data, as text
	fail    error
}

func (r *recorder) note(key string, e store.Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.written = append(r.written, key, string(e.Data))
}

func (r *recorder) Put(ctx context.Context, key string, e store.Entry) error {
	if r.fail != nil {
		return r.fail
	}
	r.note(key, e)
	return r.Store.Put(ctx, key, e)
}

func (r *recorder) Claim(ctx context.Context, key string, e store.Entry) (bool, error) {
	if r.fail != nil {
		return false, r.fail
	}
	r.note(key, e)
	return r.Store.Claim(ctx, key, e)
}

func (r *recorder) Get(ctx context.Context, key string) (store.Entry, bool, error) {
	if r.fail != nil {
		return store.Entry{}, false, r.fail
	}
	r.note(key, store.Entry{})
	return r.Store.Get(ctx, key)
}

func (r *recorder) GetMany(ctx context.Context, keys ...string) ([]store.Entry, []bool, error) {
	if r.fail != nil {
		return nil, nil, r.fail
	}
	for _, k := range keys {
		r.note(k, store.Entry{})
	}
	return r.Store.GetMany(ctx, keys...)
}

// contains reports whether any key or record written holds s.
func (r *recorder) contains(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.written {
		if strings.Contains(w, s) {
			return true
		}
	}
	return false
}

// env is one test's clock, store and grants.
type env struct {
	clock   *testclock.Clock
	store   *recorder
	codes   oauth.Codes
	refresh oauth.Refresh
}

var lifetimes = oauth.Lifetimes{Idle: 8 * time.Hour, Absolute: 12 * time.Hour}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := testclock.New(testclock.Start)
	return envOn(c, store.NewMemory(c.Now))
}

func envOn(c *testclock.Clock, s store.Store) *env {
	r := &recorder{Store: s}
	return &env{
		clock: c, store: r,
		codes:   oauth.Codes{Store: r, Now: c.Now},
		refresh: oauth.Refresh{Store: r, Now: c.Now, Lifetimes: lifetimes},
	}
}

var collections atomic.Int64

// backends runs f on a Memory store and on Firestore (the emulator), each
// judging expiry by the clock f gets.
func backends(t *testing.T, f func(t *testing.T, e *env)) {
	t.Run("memory", func(t *testing.T) { f(t, newEnv(t)) })
	t.Run("firestore", func(t *testing.T) {
		t.Setenv("FIRESTORE_EMULATOR_HOST", emulators.Firestore(t).Host)
		fs, err := store.NewFirestore(context.Background(), "impo-test", "(default)", fmt.Sprintf("oauth-%d", collections.Add(1)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fs.Close() })
		fs.Timeout = time.Minute // racing writers retry slowly on a loaded machine
		// The emulator keeps real time for its own; expiry is judged on
		// the client by this clock, started at the real time.
		c := testclock.New(time.Now())
		fs.Now = c.Now
		f(t, envOn(c, fs))
	})
}

// sha256hex is how the store must name a secret: not the secret.
func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// RFC 7636 appendix B: the verifier and its S256 challenge.
const (
	verifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func grant(e *env) oauth.Authorization {
	return oauth.Authorization{
		ClientID: "portal", RedirectURI: "https://portal.example/callback", Subject: "ana",
		Scope: []string{"openid"}, Nonce: "n-0S6_WzA2Mj", AuthTime: e.clock.Now().Truncate(time.Second),
		AMR: []string{"pwd"}, Family: oauth.NewFamilyID(),
	}
}
