package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"impo.com.uy/copetes/backend/internal/logtest"
	"impo.com.uy/copetes/backend/internal/secretstest"
	"impo.com.uy/copetes/backend/internal/testclock"
	"impo.com.uy/copetes/backend/shared/secrets"
)

const project = "impo-test"

func newSecretManager(t *testing.T) (*secretstest.Server, *secrets.SecretManager) {
	t.Helper()
	srv := secretstest.Start(t)
	sm, err := secrets.NewSecretManager(context.Background(), project, srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sm.Close() })
	// The client retries UNAVAILABLE until the deadline; keep outages short.
	sm.Timeout = 300 * time.Millisecond
	return srv, sm
}

func TestSecretManager_ReadsLatestAndPinnedVersions(t *testing.T) {
	srv, sm := newSecretManager(t)
	srv.Put(project, "accounts", []byte("v1"))
	srv.Put(project, "accounts", []byte("v2"))
	ctx := context.Background()
	tests := []struct{ name, want string }{
		{"accounts", "v2"},
		{"projects/" + project + "/secrets/accounts/versions/1", "v1"},
		{"projects/" + project + "/secrets/accounts/versions/latest", "v2"},
	}
	for _, tt := range tests {
		got, err := sm.Secret(ctx, tt.name)
		if err != nil || string(got) != tt.want {
			t.Errorf("Secret(%q) = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestSecretManager_ClassifiesFailures(t *testing.T) {
	srv, sm := newSecretManager(t)
	srv.Put(project, "present", []byte("x"))
	tests := []struct {
		name   string
		secret string
		fail   codes.Code
		want   error
	}{
		{"missing secret", "absent", codes.OK, secrets.ErrNotFound},
		{"missing version", "projects/" + project + "/secrets/present/versions/9", codes.OK, secrets.ErrNotFound},
		{"bad name", "../etc/passwd", codes.OK, secrets.ErrNotFound},
		{"permission", "present", codes.PermissionDenied, secrets.ErrPermissionDenied},
		{"unauthenticated", "present", codes.Unauthenticated, secrets.ErrPermissionDenied},
		{"outage", "present", codes.Unavailable, secrets.ErrUnavailable},
		{"internal", "present", codes.Internal, secrets.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.FailWith(tt.fail)
			defer srv.FailWith(codes.OK)
			_, err := sm.Secret(context.Background(), tt.secret)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Secret(%q) error = %v, want %v", tt.secret, err, tt.want)
			}
		})
	}
}

func TestSecretManager_AddVersionBecomesLatest(t *testing.T) {
	srv, sm := newSecretManager(t)
	srv.Create(project, "session-keys")
	name, err := sm.AddVersion(context.Background(), "session-keys", []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "projects/" + project + "/secrets/session-keys/versions/1"; name != want {
		t.Errorf("AddVersion = %q, want %q", name, want)
	}
	got, err := sm.Secret(context.Background(), "session-keys")
	if err != nil || string(got) != "new" {
		t.Errorf("Secret after AddVersion = %q, %v", got, err)
	}
	if _, err := sm.AddVersion(context.Background(), "never-created", []byte("x")); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("AddVersion to a missing secret: %v, want ErrNotFound", err)
	}
}

func TestSecretManager_AbsolutePathReadsMountedFile(t *testing.T) {
	_, sm := newSecretManager(t)
	path := filepath.Join(t.TempDir(), "accounts")
	os.WriteFile(path, []byte("mounted"), 0o600)
	got, err := sm.Secret(context.Background(), path)
	if err != nil || string(got) != "mounted" {
		t.Fatalf("Secret(%q) = %q, %v", path, got, err)
	}
}

func TestDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "accounts"), []byte("[]"), 0o600)
	os.WriteFile(filepath.Join(dir, "huge"), make([]byte, secrets.MaxSize+1), 0o600)
	tests := []struct {
		name    string
		secret  string
		want    string
		wantErr error
	}{
		{"by id", "accounts", "[]", nil},
		{"by absolute path", filepath.Join(dir, "accounts"), "[]", nil},
		{"missing", "session-keys", "", secrets.ErrNotFound},
		{"traversal", "../accounts", "", secrets.ErrNotFound},
		// Over Secret Manager's cap: no retry will help, so it is
		// malformed (500 "misconfigured"), not unavailable (503, retry).
		{"too large", "huge", "", secrets.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := secrets.Dir{Path: dir}.Secret(context.Background(), tt.secret)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
			case err != nil || string(got) != tt.want:
				t.Fatalf("Secret = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// joinWatch is a reader's context that reports when the cache first asks
// for its Done channel: the cache does that only while the reader waits
// on the upstream call, after the reader has joined it.
type joinWatch struct {
	context.Context
	once   sync.Once
	joined *sync.WaitGroup
}

func (c *joinWatch) Done() <-chan struct{} {
	c.once.Do(c.joined.Done)
	return c.Context.Done()
}

func TestCache_ConcurrentColdReadsMakeOneCall(t *testing.T) {
	srv, sm := newSecretManager(t)
	sm.Timeout = time.Minute // the held call is slow by design, not an outage
	srv.Put(project, "accounts", []byte("[]"))
	cache := secrets.NewCache(sm, 5*time.Minute, time.Hour)
	release := srv.Hold()

	const readers = 100
	var wg, joined sync.WaitGroup
	joined.Add(readers)
	errs := make(chan error, readers)
	for range readers {
		wg.Go(func() {
			ctx := &joinWatch{Context: context.Background(), joined: &joined}
			v, err := cache.Secret(ctx, "accounts")
			if err == nil && string(v) != "[]" {
				err = errors.New("wrong value " + string(v))
			}
			errs <- err
		})
	}
	// Every reader waits on the one upstream call before it answers.
	allJoined := make(chan struct{})
	go func() { joined.Wait(); close(allJoined) }()
	select {
	case <-allJoined:
	case <-time.After(time.Minute): // a guard against a hang, not a timing
		release()
		t.Fatal("the readers never all waited on the upstream call: does the cache still wait on ctx.Done?")
	}
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.AccessCalls(); n != 1 {
		t.Fatalf("%d concurrent cold reads made %d AccessSecretVersion calls, want 1", readers, n)
	}
}

func TestCache_RefreshesAfterTTL(t *testing.T) {
	srv, sm := newSecretManager(t)
	srv.Put(project, "accounts", []byte("old"))
	clk := testclock.New(time.Unix(1e9, 0))
	cache := secrets.NewCache(sm, time.Minute, time.Hour)
	cache.SetClock(clk.Now)
	ctx := context.Background()

	cache.Secret(ctx, "accounts")
	srv.Put(project, "accounts", []byte("new"))
	if v, _ := cache.Secret(ctx, "accounts"); string(v) != "old" {
		t.Errorf("within TTL got %q, want the cached %q", v, "old")
	}
	clk.Advance(time.Minute)
	if v, _ := cache.Secret(ctx, "accounts"); string(v) != "new" {
		t.Errorf("after TTL got %q, want %q", v, "new")
	}
	if n := srv.AccessCalls(); n != 2 {
		t.Errorf("AccessSecretVersion calls = %d, want 2", n)
	}
}

func TestCache_ServesStaleWithinBoundThenFails(t *testing.T) {
	srv, sm := newSecretManager(t)
	srv.Put(project, "accounts", []byte("cached"))
	clk := testclock.New(time.Unix(1e9, 0))
	cache := secrets.NewCache(sm, 5*time.Minute, time.Hour)
	cache.SetClock(clk.Now)
	ctx := context.Background()
	if _, err := cache.Secret(ctx, "accounts"); err != nil {
		t.Fatal(err)
	}

	srv.FailWith(codes.Unavailable)
	clk.Advance(5*time.Minute + 59*time.Minute)
	if v, err := cache.Secret(ctx, "accounts"); err != nil || string(v) != "cached" {
		t.Fatalf("during an outage within the bound: %q, %v; want the stale value", v, err)
	}
	clk.Advance(time.Minute)
	if _, err := cache.Secret(ctx, "accounts"); !errors.Is(err, secrets.ErrUnavailable) {
		t.Fatalf("past the stale bound: error = %v, want ErrUnavailable", err)
	}

	srv.FailWith(codes.OK)
	if v, err := cache.Secret(ctx, "accounts"); err != nil || string(v) != "cached" {
		t.Fatalf("after recovery: %q, %v", v, err)
	}
}

func TestCache_ColdFailureIsNotCached(t *testing.T) {
	srv, sm := newSecretManager(t)
	cache := secrets.NewCache(sm, 5*time.Minute, time.Hour)
	if _, err := cache.Secret(context.Background(), "accounts"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("error = %v, want ErrNotFound", err)
	}
	srv.Put(project, "accounts", []byte("now here"))
	if v, err := cache.Secret(context.Background(), "accounts"); err != nil || string(v) != "now here" {
		t.Fatalf("after the secret appears: %q, %v", v, err)
	}
}

// watched is the real Secret Manager client with a report of each read
// the cache makes through it: the test learns that a read has begun and
// how it ended, without timing anything.
type watched struct {
	secrets.Source
	started  chan string
	finished chan error
}

func watch(src secrets.Source) *watched {
	return &watched{Source: src, started: make(chan string, 100), finished: make(chan error, 100)}
}

func (w *watched) Secret(ctx context.Context, name string) ([]byte, error) {
	w.started <- name
	v, err := w.Source.Secret(ctx, name)
	w.finished <- err
	return v, err
}

// inFlight fails the test unless the one read the cache started is still
// under way: a caller that had waited for it would have returned only
// after it ended.
func (w *watched) inFlight(t *testing.T, what string) {
	t.Helper()
	select {
	case <-w.started:
	case <-time.After(time.Minute): // a guard against a hang, not a timing
		t.Fatalf("%s: no upstream read started", what)
	}
	w.stillOne(t, what)
}

// stillOne fails the test unless the read under way is the only one, and
// has not ended.
func (w *watched) stillOne(t *testing.T, what string) {
	t.Helper()
	if len(w.finished) != 0 {
		t.Fatalf("%s: the caller returned after the upstream read ended: it waited for upstream", what)
	}
	if len(w.started) != 0 {
		t.Fatalf("%s: %d more upstream reads started, want one at a time", what, len(w.started))
	}
}

// An outage of Secret Manager used to hold every request for the full
// upstream timeout at each refresh round (GetToken p50 8 s during a 40 s
// outage). Now no caller waits for upstream while a value it may use is
// cached: each round, one read runs in the background while the upstream
// is held, and the callers meanwhile get the cached value. Each failed
// round logs one WARNING.
func TestCache_AnOutageHoldsNoCallerWhileTheStaleValueServes(t *testing.T) {
	srv, sm := newSecretManager(t)
	sm.Timeout = time.Minute // a held read ends when the test releases it
	srv.Put(project, "accounts", []byte("v1"))
	log := logtest.Capture(t)
	clk := testclock.New(testclock.Start)
	src := watch(sm)
	const ttl = 4 * time.Minute
	cache := secrets.NewCache(src, ttl, time.Hour)
	cache.SetClock(clk.Now)
	get := func(what string) {
		t.Helper()
		if v, err := cache.Secret(context.Background(), "accounts"); err != nil || string(v) != "v1" {
			t.Fatalf("%s: %q, %v; want the cached v1 at once", what, v, err)
		}
	}
	get("a cold read")
	<-src.started
	<-src.finished

	// The outage: every read hangs until the test releases it, then fails
	// (codes.Internal, which the client does not retry, so that the read
	// ends as soon as it is released).
	srv.FailWith(codes.Internal)
	warnings := func() int { return len(log.Messages("serving a cached secret: refreshing it failed")) }

	// Three quarters into the TTL, the first caller starts a read, and
	// neither it nor the callers after it wait for that read.
	clk.Advance(ttl * 3 / 4)
	release := srv.Hold()
	get("renewing ahead of the TTL")
	src.inFlight(t, "renewing ahead of the TTL")
	for range 10 {
		get("renewing ahead of the TTL, while the read is held")
	}
	src.stillOne(t, "renewing ahead of the TTL")
	release()
	if err := <-src.finished; !errors.Is(err, secrets.ErrUnavailable) {
		t.Fatalf("the held read ended with %v, want ErrUnavailable", err)
	}
	cache.Settle("accounts")
	if n := warnings(); n != 1 {
		t.Fatalf("one failed read logged %d WARNINGs, want 1", n)
	}

	// Past the TTL, with the failure known: every round, one background
	// read; nobody waits for it; one WARNING per round.
	clk.Set(testclock.Start.Add(ttl + time.Second))
	for round := range 3 {
		what := fmt.Sprintf("outage round %d", round+1)
		release := srv.Hold()
		get(what)
		src.inFlight(t, what)
		for range 10 {
			get(what)
		}
		src.stillOne(t, what)
		release()
		<-src.finished
		cache.Settle("accounts")
		if n := warnings(); n != round+2 {
			t.Fatalf("%s: %d WARNINGs in all, want one per failed round (%d)", what, n, round+2)
		}
		// Within the round, callers get the value and start no read.
		get(what)
		if len(src.started) != 0 {
			t.Fatalf("%s: a read started before the retry delay passed", what)
		}
		clk.Advance(5 * time.Second)
	}

	// The outage ends: the next round's read brings the new value, still
	// without anyone waiting for it.
	srv.FailWith(codes.OK)
	srv.Put(project, "accounts", []byte("v2"))
	get("the round that ends the outage")
	<-src.started
	if err := <-src.finished; err != nil {
		t.Fatal(err)
	}
	cache.Settle("accounts")
	if v, err := cache.Secret(context.Background(), "accounts"); err != nil || string(v) != "v2" {
		t.Fatalf("after the outage: %q, %v; want v2", v, err)
	}
}

// Serving a value past its TTL whenever it is within the stale bound
// would let an idle instance answer with an accounts list as old as the
// bound (a disabled account would still log in once). Outside an outage a
// value past its TTL is read again before it serves, and so is one whose
// last failed read is more than a TTL old.
func TestCache_AnExpiredValueIsReadAgainBeforeItServes(t *testing.T) {
	srv, sm := newSecretManager(t)
	srv.Put(project, "accounts", []byte("v1"))
	clk := testclock.New(testclock.Start)
	const ttl = 5 * time.Minute
	cache := secrets.NewCache(sm, ttl, time.Hour)
	cache.SetClock(clk.Now)
	ctx := context.Background()
	want := func(what, value string) {
		t.Helper()
		if v, err := cache.Secret(ctx, "accounts"); err != nil || string(v) != value {
			t.Fatalf("%s: %q, %v; want %q", what, v, err, value)
		}
	}
	want("cold", "v1")

	srv.Put(project, "accounts", []byte("v2"))
	clk.Advance(20 * time.Minute) // idle, well within the stale bound
	want("idle past the TTL", "v2")

	// An outage, then a recovery nobody saw: the failure is old news.
	clk.Advance(ttl)
	srv.FailWith(codes.Internal)
	want("a failed read past the TTL", "v2")
	srv.FailWith(codes.OK)
	srv.Put(project, "accounts", []byte("v3"))
	clk.Advance(ttl)
	want("a TTL after the last failure", "v3")
}

// The one wait left, a cold cache, is bounded: a Secret Manager that
// never answers is an error once the read's timeout passes.
func TestCache_AColdReadWaitsNoLongerThanTheReadTimeout(t *testing.T) {
	srv, sm := newSecretManager(t)
	sm.Timeout = 50 * time.Millisecond // the test waits for this timer, not for a sleep
	srv.Put(project, "accounts", []byte("v1"))
	release := srv.Hold()
	defer release()
	cache := secrets.NewCache(sm, 5*time.Minute, time.Hour)
	if _, err := cache.Secret(context.Background(), "accounts"); !errors.Is(err, secrets.ErrUnavailable) {
		t.Fatalf("a cold read from a Secret Manager that never answers: %v, want ErrUnavailable", err)
	}
}

func TestDecoded_DecodesOnlyWhenBytesChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "n")
	os.WriteFile(path, []byte("1"), 0o600)
	decodes := 0
	d := &secrets.Decoded[string]{Source: secrets.Dir{Path: dir}, Name: "n", Decode: func(b []byte) (string, error) {
		decodes++
		if string(b) == "bad" {
			return "", errors.New("not a number")
		}
		return string(b), nil
	}}
	ctx := context.Background()
	d.Get(ctx)
	d.Get(ctx)
	if decodes != 1 {
		t.Errorf("two reads of unchanged bytes decoded %d times, want 1", decodes)
	}
	os.WriteFile(path, []byte("bad"), 0o600)
	if _, err := d.Get(ctx); err == nil {
		t.Error("malformed secret: want an error")
	}
	os.WriteFile(path, []byte("2"), 0o600)
	if v, err := d.Get(ctx); err != nil || v != "2" {
		t.Errorf("Get = %q, %v; want 2", v, err)
	}
}
