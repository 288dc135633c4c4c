package session

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"impo.com.uy/copetes/backend/internal/logtest"
	"impo.com.uy/copetes/backend/shared/secrets"
)

func TestVerify_WithKeysFromThePublishedJWKS(t *testing.T) {
	f := newFixture(t)
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		json.NewEncoder(w).Encode(f.keys.JWKS())
	}))
	defer srv.Close()
	f.verifier.Keys = jwksKeys(srv.URL, time.Minute, time.Hour)
	ctx := context.Background()
	for range 3 {
		token, _, _ := f.issuer.Issue(ctx, "ana", "user", nil)
		if _, err := f.verifier.Verify(ctx, token); err != nil {
			t.Fatalf("a token verified against the JWKS: %v", err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times for three verifications, want 1 (cached)", n)
	}
	h, c := f.header(), f.claims()
	h["kid"] = "not-published"
	if _, err := f.verifier.Verify(ctx, sign(h, c, f.priv)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a kid absent from the JWKS: %v", err)
	}
}

// jwksServer is a login /jwks whose answer the test changes between
// requests; it counts the requests it gets.
type jwksServer struct {
	*httptest.Server
	mu       sync.Mutex
	answer   http.HandlerFunc
	requests atomic.Int64
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		answer := s.answer
		s.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(answer http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = answer
}

func body(contentType, text string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Write([]byte(text))
	}
}

// A 200 whose body was not a key set used to be cached as bytes: every
// verification then failed to decode it for a whole SESSION_JWKS_TTL,
// while a 500 fell back to the last good set. Now every failed refresh —
// bad status, bad body, a login that hangs — keeps the last good set
// serving, with a WARNING, until it is stale past its TTL; then
// verification fails closed.
func TestJWKS_AFailedRefreshKeepsTheLastGoodSetUntilTheStaleBound(t *testing.T) {
	f := newFixture(t)
	log := logtest.Capture(t)
	ctx := context.Background()
	good, _ := json.Marshal(f.keys.JWKS())
	var withBrokenKey map[string][]map[string]any
	json.Unmarshal(good, &withBrokenKey)
	withBrokenKey["keys"][1]["x"] = base64.RawURLEncoding.EncodeToString(make([]byte, 31))
	broken, _ := json.Marshal(withBrokenKey)

	// A hanging login is cut by the client's own timeout: short here, so
	// that the test waits for the timer, never for a sleep.
	release := make(chan struct{})
	hang := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	srv := newJWKSServer(t)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	client := &http.Client{}
	const ttl, stale = time.Minute, time.Hour
	f.verifier.Keys = jwksSource{URL: srv.URL, Client: client, TTL: ttl, Stale: stale, Now: f.clock.Now}.keys()
	verify := func() error {
		token, _, err := f.issuer.Issue(ctx, "ana", "user", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.verifier.Verify(ctx, token)
		return err
	}

	srv.set(body("application/jwk-set+json", string(good)))
	if err := verify(); err != nil {
		t.Fatalf("with a good JWKS: %v", err)
	}

	bad := []struct {
		name   string
		answer http.HandlerFunc
		want   string // in the WARNING's error
	}{
		{"200 with HTML", body("text/html", "<html><body>Sign in</body></html>"), "malformed"},
		{"200 with {}", body("application/json", "{}"), `"keys" must be an array`},
		{"200 with a broken key", body("application/jwk-set+json", string(broken)), "x (the public key)"},
		{"500", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }, "500"},
		{"a hang", hang, "Timeout exceeded"},
	}
	for _, b := range bad {
		f.clock.Advance(ttl) // the set is due for a refresh
		srv.set(b.answer)
		if b.name == "a hang" {
			client.Timeout = 20 * time.Millisecond
		}
		before := srv.requests.Load()
		if err := verify(); err != nil {
			t.Fatalf("%s: verification failed instead of using the last good set: %v", b.name, err)
		}
		if srv.requests.Load() == before {
			t.Fatalf("%s: no refresh was attempted: the test proves nothing", b.name)
		}
		warnings := log.Messages("serving a cached secret: refreshing it failed")
		if len(warnings) == 0 {
			t.Fatalf("%s: no WARNING that a stale JWKS serves", b.name)
		}
		w := warnings[len(warnings)-1]
		if w["severity"] != "WARNING" || !strings.Contains(w["error"].(string), b.want) {
			t.Fatalf("%s: log %v, want a WARNING whose error says %q", b.name, w, b.want)
		}
	}

	// Past the stale bound the last good set is too old to trust.
	srv.set(body("text/html", "<html></html>"))
	f.clock.Set(t0.Add(ttl + stale))
	err := verify()
	if err == nil || errors.Is(err, ErrInvalid) || !errors.Is(err, secrets.ErrMalformed) {
		t.Fatalf("past the stale bound: %v; want a failure to get the keys (not a verdict on the token)", err)
	}

	// And a good answer is taken again as soon as there is one.
	srv.set(body("application/jwk-set+json", string(good)))
	f.clock.Advance(10 * time.Second) // past the cache's retry delay
	if err := verify(); err != nil {
		t.Fatalf("login's JWKS is good again: %v", err)
	}
}

// watchedFetcher is the real JWKS fetcher with a report of each fetch:
// the test learns that a fetch has begun and how it ended, without timing
// anything.
type watchedFetcher struct {
	JWKSFetcher
	started  chan string
	finished chan error
}

func (w *watchedFetcher) Secret(ctx context.Context, u string) ([]byte, error) {
	w.started <- u
	v, err := w.JWKSFetcher.Secret(ctx, u)
	w.finished <- err
	return v, err
}

// A login outage (or a login that hangs) used to hold every verification
// for the fetch timeout, at every retry round. Now a verifier with a set
// it may use never waits for login: ahead of the TTL and, once a fetch has
// failed, past it, one fetch per round runs in the background while
// verification goes on with the cached set; each failed round logs one
// WARNING.
func TestJWKS_ALoginOutageHoldsNoVerification(t *testing.T) {
	f := newFixture(t)
	log := logtest.Capture(t)
	ctx := context.Background()
	good, _ := json.Marshal(f.keys.JWKS())
	srv := newJWKSServer(t)
	srv.set(body("application/jwk-set+json", string(good)))
	fetch := &watchedFetcher{JWKSFetcher: JWKSFetcher{Client: &http.Client{}}, started: make(chan string, 100), finished: make(chan error, 100)}
	const ttl = 4 * time.Minute
	cache, keys := jwksSource{URL: srv.URL, Fetcher: fetch, TTL: ttl, Stale: time.Hour, Now: f.clock.Now}.build()
	f.verifier.Keys = keys
	verify := func(what string) {
		t.Helper()
		token, _, err := f.issuer.Issue(ctx, "ana", "user", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.verifier.Verify(ctx, token); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	verify("with a good JWKS")
	<-fetch.started
	<-fetch.finished

	// stillOne fails the test unless exactly one fetch has begun and it
	// has not ended: a verification that had waited for it would have
	// returned only after it ended.
	stillOne := func(what string) {
		t.Helper()
		select {
		case <-fetch.started:
		case <-time.After(time.Minute): // a guard against a hang, not a timing
			t.Fatalf("%s: no JWKS fetch started", what)
		}
		if len(fetch.finished) != 0 || len(fetch.started) != 0 {
			t.Fatalf("%s: %d fetches ended, %d more began; want one held fetch: a verification waited for login", what, len(fetch.finished), len(fetch.started))
		}
	}
	// hold makes login's /jwks hang until the returned function lets it
	// answer 500.
	hold := func() (release func()) {
		gate := make(chan struct{})
		srv.set(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-gate:
			case <-r.Context().Done():
			}
			w.WriteHeader(http.StatusInternalServerError)
		})
		return func() { close(gate) }
	}
	round := func(what string, warnings int) {
		t.Helper()
		release := hold()
		verify(what)
		stillOne(what)
		for range 5 {
			verify(what + ", while the fetch is held")
		}
		if len(fetch.finished) != 0 || len(fetch.started) != 0 {
			t.Fatalf("%s: more verifications started or waited for fetches", what)
		}
		release()
		if err := <-fetch.finished; err == nil {
			t.Fatalf("%s: the held fetch succeeded", what)
		}
		cache.Settle(srv.URL)
		if n := len(log.Messages("serving a cached secret: refreshing it failed")); n != warnings {
			t.Fatalf("%s: %d WARNINGs in all, want %d: one per failed round", what, n, warnings)
		}
	}

	f.clock.Advance(ttl * 3 / 4)
	round("renewing ahead of the TTL", 1)
	f.clock.Set(t0.Add(ttl + time.Second))
	round("past the TTL, in the outage", 2)
	f.clock.Advance(5 * time.Second)
	round("the next round", 3)

	// Login answers again: the next round's fetch takes the set.
	f.clock.Advance(5 * time.Second)
	srv.set(body("application/jwk-set+json", string(good)))
	verify("the round that ends the outage")
	<-fetch.started
	if err := <-fetch.finished; err != nil {
		t.Fatalf("login answers again: %v", err)
	}
}

// A verifier whose first JWKS answer is not a key set has nothing to fall
// back to: it refuses, and takes the keys on the next good answer.
func TestJWKS_ABadFirstAnswerFailsClosed(t *testing.T) {
	f := newFixture(t)
	srv := newJWKSServer(t)
	f.verifier.Keys = jwksSource{URL: srv.URL, Client: srv.Client(), TTL: time.Minute, Stale: time.Hour, Now: f.clock.Now}.keys()
	ctx := context.Background()
	token, _, _ := f.issuer.Issue(ctx, "ana", "user", nil)
	srv.set(body("application/json", `{"keys":[]}`))
	if _, err := f.verifier.Verify(ctx, token); err == nil || errors.Is(err, ErrInvalid) {
		t.Fatalf("with an empty first JWKS: %v, want a failure to get the keys", err)
	}
	good, _ := json.Marshal(f.keys.JWKS())
	srv.set(body("application/jwk-set+json", string(good)))
	if _, err := f.verifier.Verify(ctx, token); err != nil {
		t.Fatalf("with a good JWKS next: %v", err)
	}
}

func TestParsePublicKeySet_RefusesPrivateKeys(t *testing.T) {
	k, _ := NewKey()
	private, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k}})
	public, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.Public()}})
	if _, err := ParsePublicKeySet(private); err == nil {
		t.Error("a JWKS with a private key was accepted")
	}
	if _, err := ParsePublicKeySet([]byte(`{"keys":[]}`)); err == nil {
		t.Error("an empty JWKS was accepted")
	}
	if keys, err := ParsePublicKeySet(public); err != nil || len(keys) != 1 {
		t.Errorf("a public JWKS: %v, %v", keys, err)
	}
}

func TestCheckJWKSURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://login-abc.a.run.app/jwks": true,
		"http://127.0.0.1:8080/Login/jwks": true,
		"http://localhost/jwks":            true,
		"http://login.example/jwks":        false,
		"/jwks":                            false,
		"ftp://x/jwks":                     false,
	} {
		if err := CheckJWKSURL(u); (err == nil) != ok {
			t.Errorf("CheckJWKSURL(%q) = %v", u, err)
		}
	}
}
