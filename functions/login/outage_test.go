package login

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"impo.com.uy/copetes/backend/internal/secretstest"
	"impo.com.uy/copetes/backend/internal/testclock"
	"impo.com.uy/copetes/backend/shared/platform"
	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/session"
	"impo.com.uy/copetes/backend/shared/store"
)

// watchedSecrets is the real Secret Manager client with a report of each
// read the cache makes through it: the test learns that reads have begun
// and that they ended, without timing anything.
type watchedSecrets struct {
	secrets.Source
	started  chan string
	finished chan error
}

func (w *watchedSecrets) Secret(ctx context.Context, name string) ([]byte, error) {
	w.started <- name
	v, err := w.Source.Secret(ctx, name)
	w.finished <- err
	return v, err
}

// A Secret Manager outage used to hold every login for the upstream
// timeout at each refresh round, and people with the right password ran
// into the lock-out. Now, while the cached accounts and keys may serve,
// logins with the right password succeed at once — more of them than
// LOGIN_MAX_FAILURES, while Secret Manager does not answer at all — and
// leave no failure behind: afterwards the person still has every one of
// the attempts the policy allows.
func TestToken_SecretManagerOutageHoldsNoLoginAndCountsNoFailure(t *testing.T) {
	const project = "impo-test"
	srv := secretstest.Start(t)
	dir := t.TempDir()
	writeCredentials(t, dir)
	for _, id := range []string{"session-keys", "accounts", "clients"} {
		data, err := os.ReadFile(filepath.Join(dir, id))
		if err != nil {
			t.Fatal(err)
		}
		srv.Put(project, id, data)
	}
	sm, err := secrets.NewSecretManager(context.Background(), project, srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sm.Close() })
	sm.Timeout = time.Minute // a held read ends when the test releases it
	reads := &watchedSecrets{Source: sm, started: make(chan string, 100), finished: make(chan error, 100)}
	clk := testclock.New(testclock.Start)
	const ttl = 5 * time.Minute
	cache := secrets.NewCache(reads, ttl, time.Hour) // as secrets.Open wires it
	cache.SetClock(clk.Now)

	cfg := testConfig()
	scfg := session.Config{Issuer: "https://login.test", Audience: "impo-backend", TTL: time.Hour,
		Leeway: 30 * time.Second, KeysSecret: "session-keys"}
	st := store.NewMemory(clk.Now)
	ts := &testServer{dir: dir, clock: clk}
	ts.server = newServer(cfg, &platform.Platform{Secrets: cache, Store: st}, session.NewAuthority(scfg, cache, st, clk.Now), clk.Now)
	ts.http = ts.routes()
	loginAs := func(pw string) int {
		return ts.do("POST", "/token", ctJSON, loginJSON("ana", pw)).Status
	}

	if code := loginAs("ana-secret-pw"); code != 200 {
		t.Fatalf("before the outage: %d", code)
	}
	for range 3 { // the accounts, the clients and the signing keys, read cold
		<-reads.started
		<-reads.finished
	}

	// The outage: every read hangs until the test releases it, then fails
	// (codes.Internal, which the client does not retry, so that a read
	// ends as soon as it is released).
	srv.FailWith(codes.Internal)
	phase := func(what string) {
		t.Helper()
		release := srv.Hold()
		defer release()
		for i := range cfg.PerPair.Threshold + 1 {
			if code := loginAs("ana-secret-pw"); code != 200 {
				t.Fatalf("%s, login %d with the right password: %d, want 200 from the cached accounts", what, i+1, code)
			}
		}
		// The three secrets are being read, held by Secret Manager, and
		// no read has ended: the logins did not wait for one.
		for range 3 {
			select {
			case <-reads.started:
			case <-time.After(time.Minute): // a guard against a hang, not a timing
				t.Fatalf("%s: the secrets were not read again in the background", what)
			}
		}
		if len(reads.finished) != 0 || len(reads.started) != 0 {
			t.Fatalf("%s: %d reads ended, %d more began, while Secret Manager held them: a login waited", what, len(reads.finished), len(reads.started))
		}
		release()
		for range 3 {
			<-reads.finished
		}
		cache.Settle("accounts")
		cache.Settle("clients")
		cache.Settle("session-keys")
	}
	clk.Advance(ttl * 4 / 5)
	phase("ahead of the TTL")
	clk.Set(testclock.Start.Add(ttl + time.Minute))
	phase("past the TTL, in the outage")

	// No failure was left behind: LOGIN_MAX_FAILURES-1 wrong passwords,
	// and the right one still gets in (one failure more and it would meet
	// the lock-out).
	for range cfg.PerPair.Threshold - 1 {
		if code := loginAs("not-the-password"); code == 200 {
			t.Fatal("a wrong password logged in")
		}
	}
	if code := loginAs("ana-secret-pw"); code != 200 {
		t.Fatalf("after the outage and %d wrong passwords: %d, want 200: the outage's logins counted as failures", cfg.PerPair.Threshold-1, code)
	}
}
