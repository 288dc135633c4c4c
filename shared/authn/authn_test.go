package authn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/lockout"
	"impo.com.uy/copetes/backend/shared/password"
	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/store"
)

type fixture struct {
	a      *Authenticator
	hashes atomic.Int64
	list   *accounts.List
	mu     sync.Mutex
	costs  []check // every hash or digest computed
}

// check is what one secret check cost: a digest, or argon2id at Params.
type check struct {
	Fast   bool
	Params password.Params
}

var (
	digest = check{Fast: true}
	argon  = check{Params: password.Default}
	strong = check{Params: strongParams}
)

func hashOf(t *testing.T, pw string, p password.Params) string {
	t.Helper()
	h, err := password.Hash([]byte(pw), p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// newFixture authenticates against people (ana; old, disabled; strong,
// hashed at a higher cost) and services holding secrets' digests
// (pipeline; retired, disabled), plus extra.
func newFixture(t *testing.T, extra ...accounts.Account) *fixture {
	t.Helper()
	data, err := accounts.Marshal(append([]accounts.Account{
		{Name: "ana", Kind: accounts.User, Hash: hashOf(t, "ana-pw", password.Default), Roles: []string{"editor"}},
		{Name: "old", Kind: accounts.User, Hash: hashOf(t, "old-pw", password.Default), Disabled: true},
		{Name: "pipeline", Kind: accounts.Service, Hash: password.HashSecret([]byte("pipeline-secret")), Roles: []string{"pipeline"}},
		{Name: "retired", Kind: accounts.Service, Hash: password.HashSecret([]byte("retired-secret")), Disabled: true},
		{Name: "strong", Kind: accounts.User, Hash: hashOf(t, "strong-pw", strongParams), Roles: []string{"editor"}},
	}, extra...))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{}
	if f.list, err = accounts.Parse(data); err != nil {
		t.Fatal(err)
	}
	policy := lockout.Policy{Threshold: 3, Window: time.Hour, Base: 30 * time.Second, Max: time.Minute}
	perAccount, perAddress := policy, policy
	perAccount.Threshold, perAddress.Threshold = 6, 100
	guard := lockout.Guard{Store: store.NewMemory(nil), Now: time.Now}
	f.a = New(func(context.Context) (*accounts.List, error) { return f.list, nil }, guard,
		Policies{PerPair: policy, PerAccount: perAccount, PerAddress: perAddress, IPv6Prefix: 64},
		func(_ context.Context, h password.Hashed, pw []byte) (bool, error) {
			f.hashes.Add(1)
			f.mu.Lock()
			f.costs = append(f.costs, check{h.Fast(), h.Params})
			f.mu.Unlock()
			return h.Matches(pw), nil
		}, password.Default)
	return f
}

// strongParams is a hash costlier than the default, as an account hashed
// with stronger (or, for the dummy, newer) parameters has.
var strongParams = password.Params{Memory: 2 * password.Default.Memory, Time: 3, Threads: 1}

func user(name, pw string) Attempt {
	return Attempt{Name: name, Secret: pw, Kind: accounts.User, Address: "192.0.2.1"}
}

func service(name, secret string) Attempt {
	return Attempt{Name: name, Secret: secret, Kind: accounts.Service, Address: "192.0.2.1"}
}

func TestAuthenticate_EveryBadCredentialIsOneErrorAndCostsWhatItsKindCosts(t *testing.T) {
	tests := []struct {
		name string
		at   Attempt
		want check // what a right secret of the grant's kind costs
	}{
		{"person: wrong password", user("ana", "nope"), argon},
		{"person: unknown account", user("nobody", "nope"), strong},
		{"person: disabled account", user("old", "old-pw"), argon},
		{"person grant: a service's name and secret", user("pipeline", "pipeline-secret"), strong},
		{"service: wrong secret", service("pipeline", "nope"), digest},
		{"service: unknown client id", service("nobody", "nope"), digest},
		{"service: disabled service", service("retired", "retired-secret"), digest},
		{"service grant: a person's name and password", service("ana", "ana-pw"), digest},
		{"service grant: the costliest person's name", service("strong", "strong-pw"), digest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			_, err := f.a.Authenticate(context.Background(), tt.at)
			if err != ErrBadCredentials {
				t.Fatalf("error = %v, want exactly ErrBadCredentials", err)
			}
			if len(f.costs) != 1 || f.costs[0] != tt.want {
				t.Fatalf("checks computed = %+v, want one %+v: time must not tell the cases apart", f.costs, tt.want)
			}
		})
	}
}

func TestAuthenticate_ServicesLogInWithDigestsAndOldArgonHashes(t *testing.T) {
	f := newFixture(t, accounts.Account{Name: "legacy", Kind: accounts.Service,
		Hash: hashOf(t, "legacy-secret", password.Default), Roles: []string{"pipeline"}})
	for _, at := range []Attempt{service("pipeline", "pipeline-secret"), service("legacy", "legacy-secret")} {
		if acct, err := f.a.Authenticate(context.Background(), at); err != nil || acct.Name != at.Name {
			t.Fatalf("%s: %+v, %v", at.Name, acct, err)
		}
	}
	if want := []check{digest, argon}; !slices.Equal(f.costs, want) {
		t.Fatalf("checks = %+v, want %+v", f.costs, want)
	}
	// While one service still holds an argon2id hash, an unknown client id
	// costs one, as every client id did before digests: the old account
	// must not stand out as the slow one.
	f.costs = nil
	f.a.Authenticate(context.Background(), service("nobody", "x"))
	if want := []check{argon}; !slices.Equal(f.costs, want) {
		t.Fatalf("an unknown client id beside an argon2id service: checks = %+v, want %+v", f.costs, want)
	}
}

func TestAuthenticate_RightSecretLogsIn(t *testing.T) {
	f := newFixture(t)
	acct, err := f.a.Authenticate(context.Background(), user(" Ana ", "ana-pw"))
	if err != nil || acct.Name != "ana" {
		t.Fatalf("Authenticate = %+v, %v", acct, err)
	}
}

func TestAuthenticate_LockedBeforeAnyHash(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for range 3 { // from one address: the account from it is locked
		if _, err := f.a.Authenticate(ctx, user("ana", "nope")); err != ErrBadCredentials {
			t.Fatal(err)
		}
	}
	before := f.hashes.Load()
	_, err := f.a.Authenticate(ctx, user("ana", "ana-pw"))
	var locked *LockedError
	if !errors.As(err, &locked) || locked.Subject != "account from this address" || locked.RetryAfter <= 0 {
		t.Fatalf("error = %v, want *LockedError for the account from this address", err)
	}
	if f.hashes.Load() != before {
		t.Fatal("a locked attempt computed a hash")
	}
}

func TestAuthenticate_InfrastructureFailuresCountNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	matches := f.a.Matches
	f.a.Matches = func(context.Context, password.Hashed, []byte) (bool, error) { return false, password.ErrBusy }
	for range 5 {
		if _, err := f.a.Authenticate(ctx, user("ana", "ana-pw")); !errors.Is(err, ErrBusy) {
			t.Fatalf("busy hashing: %v, want ErrBusy", err)
		}
	}
	f.a.Matches = matches
	list := f.a.Accounts
	f.a.Accounts = func(context.Context) (*accounts.List, error) {
		return nil, secrets.ErrUnavailable
	}
	for range 5 {
		_, err := f.a.Authenticate(ctx, user("ana", "ana-pw"))
		var down *UnavailableError
		if !errors.As(err, &down) || !errors.Is(err, secrets.ErrUnavailable) {
			t.Fatalf("accounts unavailable: %v, want *UnavailableError wrapping the cause", err)
		}
	}
	f.a.Accounts = list
	if _, err := f.a.Authenticate(ctx, user("ana", "ana-pw")); err != nil {
		t.Fatalf("after ten unjudged attempts: %v; they must not have counted", err)
	}
}

func from(at Attempt, addr string) Attempt { at.Address = addr; return at }

func TestAuthenticate_AnAttackerCannotLockOutAKnownDeviceOrItsAddress(t *testing.T) {
	f := newFixture(t)
	f.a.Policies.PerAddress.Threshold = 3
	ctx := context.Background()
	// Guesses from many addresses reach the account-wide threshold.
	for i := range 6 {
		if _, err := f.a.Authenticate(ctx, from(user("ana", "guess"), fmt.Sprintf("198.51.100.%d", i))); err != ErrBadCredentials {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	victim := from(user("ana", "ana-pw"), "192.0.2.50")
	var locked *LockedError
	if _, err := f.a.Authenticate(ctx, victim); !errors.As(err, &locked) || locked.Subject != "account" {
		t.Fatalf("the account after 6 guesses from anywhere: %v, want the account-wide lock", err)
	}
	// Refused by the account's lock, the victim's retries are not charged
	// to its address: ten of them, and the address (threshold 3) is free.
	for range 10 {
		f.a.Authenticate(ctx, victim)
	}
	if _, err := f.a.Authenticate(ctx, from(user("strong", "strong-pw"), "192.0.2.50")); err != nil {
		t.Fatalf("another person behind the victim's address: %v; refused retries locked the address", err)
	}
	// An operator's unlock lifts the account-wide lock.
	if err := Unlock(ctx, f.a.Guard, "ANA"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.a.Authenticate(ctx, from(user("ana", "ana-pw"), "192.0.2.51")); err != nil {
		t.Fatalf("after the operator's unlock: %v", err)
	}
	for i := range 6 {
		f.a.Authenticate(ctx, from(user("ana", "guess"), fmt.Sprintf("198.51.100.%d", 10+i)))
	}
	// A device that logged in as ana before is not shut out.
	known := victim
	known.Device = "device-1"
	if acct, err := f.a.Authenticate(ctx, known); err != nil || acct.Name != "ana" {
		t.Fatalf("ana from a known device under the account-wide lock: %v", err)
	}
}

func TestAuthenticate_ServiceAccountsAreLimitedByAddressOnly(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	svc := func(secret, addr string) Attempt {
		return Attempt{Name: "pipeline", Secret: secret, Kind: accounts.Service, Address: addr}
	}
	for i := range 20 { // an attacker who knows the client_id, from twenty addresses
		if _, err := f.a.Authenticate(ctx, svc("guess", fmt.Sprintf("198.51.100.%d", i))); err != ErrBadCredentials {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if _, err := f.a.Authenticate(ctx, svc("pipeline-secret", "192.0.2.9")); err != nil {
		t.Fatalf("the pipeline after 20 guesses by others: %v; a service account must never be locked", err)
	}
	f.a.Policies.PerAddress.Threshold = 3
	for range 3 {
		f.a.Authenticate(ctx, svc("guess", "203.0.113.1"))
	}
	var locked *LockedError
	before := f.hashes.Load()
	if _, err := f.a.Authenticate(ctx, svc("guess", "203.0.113.1")); !errors.As(err, &locked) || locked.Subject != "address" {
		t.Fatalf("the guessing address: %v, want it locked", err)
	}
	if f.hashes.Load() != before {
		t.Fatal("a locked address reached the digest: a service's fast check must come after the lock-out too")
	}
}

func TestAuthenticate_AnIPv6NetworkIsOneAddress(t *testing.T) {
	f := newFixture(t)
	f.a.Policies.PerAddress.Threshold = 3
	ctx := context.Background()
	for i := range 3 {
		f.a.Authenticate(ctx, from(user(fmt.Sprintf("nobody%d", i), "x"), fmt.Sprintf("2001:db8:7:7::%x", i+1)))
	}
	var locked *LockedError
	if _, err := f.a.Authenticate(ctx, from(user("ana", "ana-pw"), "2001:db8:7:7:ffff::1")); !errors.As(err, &locked) || locked.Subject != "address" {
		t.Fatalf("a fourth address of the same /64: %v, want the /64 locked", err)
	}
	if _, err := f.a.Authenticate(ctx, from(user("ana", "ana-pw"), "2001:db8:7:8::1")); err != nil {
		t.Fatalf("the next /64: %v", err)
	}
}

func TestAuthenticate_UnknownNamesCostWhatTheCostliestAccountCosts(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.a.Authenticate(ctx, user("strong", "nope"))
	f.a.Authenticate(ctx, user("nobody", "nope"))
	if want := []check{strong, strong}; !slices.Equal(f.costs, want) {
		t.Fatalf("hash parameters = %+v, want the strong account's for both the account and an unknown name", f.costs)
	}
}

// writes counts the store writes of a real store.
type writes struct {
	store.Store
	n atomic.Int64
}

func (w *writes) Add(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	w.n.Add(1)
	return w.Store.Add(ctx, key, delta, ttl)
}

func (w *writes) Put(ctx context.Context, key string, e store.Entry) error {
	w.n.Add(1)
	return w.Store.Put(ctx, key, e)
}

func TestAuthenticate_ASaturatedLimiterShedsPeopleBeforeAnyWrite(t *testing.T) {
	f := newFixture(t)
	w := &writes{Store: store.NewMemory(nil)}
	f.a.Guard = lockout.Guard{Store: w, Now: time.Now}
	f.a.Saturated = func() bool { return true }
	ctx := context.Background()
	for _, at := range []Attempt{user("ana", "ana-pw"), user("nobody", "x")} {
		if _, err := f.a.Authenticate(ctx, at); !errors.Is(err, ErrBusy) {
			t.Fatalf("%s while the hash queue is full: %v, want ErrBusy", at.Name, err)
		}
	}
	if f.hashes.Load() != 0 || w.n.Load() != 0 {
		t.Fatalf("shed attempts computed %d hashes and wrote %d times to the store; want none", f.hashes.Load(), w.n.Load())
	}
	// A service's digest needs no room: it is not shed.
	if acct, err := f.a.Authenticate(ctx, service("pipeline", "pipeline-secret")); err != nil || acct.Name != "pipeline" {
		t.Fatalf("a service while people are shed: %+v, %v", acct, err)
	}
}

// TestAuthenticate_MixedServicesRefuseAtOneCost: while one service still
// holds an argon2id hash, an unknown client id costs one; a service moved
// to a digest must refuse a wrong secret at that cost too, or the quick
// refusals would tell which client ids exist. Its right secret stays fast.
func TestAuthenticate_MixedServicesRefuseAtOneCost(t *testing.T) {
	f := newFixture(t, accounts.Account{Name: "legacy", Kind: accounts.Service,
		Hash: hashOf(t, "legacy-secret", password.Default), Roles: []string{"pipeline"}})
	ctx := context.Background()
	tests := []struct {
		name string
		at   Attempt
		want []check
	}{
		{"migrated, wrong secret", service("pipeline", "wrong"), []check{digest, argon}},
		{"unknown client id", service("nobody", "wrong"), []check{argon}},
		{"old argon2id service, wrong secret", service("legacy", "wrong"), []check{argon}},
		{"a person's name as a client id", service("ana", "wrong"), []check{argon}},
		{"migrated, right secret", service("pipeline", "pipeline-secret"), []check{digest}},
	}
	for _, tt := range tests {
		f.costs = nil
		_, err := f.a.Authenticate(ctx, tt.at)
		if wantErr := tt.at.Secret == "wrong"; wantErr != (err == ErrBadCredentials) {
			t.Errorf("%s: error %v", tt.name, err)
		}
		if !slices.Equal(f.costs, tt.want) {
			t.Errorf("%s: checks = %+v, want %+v", tt.name, f.costs, tt.want)
		}
	}
	// Once every service holds a digest, nothing pays argon2id for them.
	f = newFixture(t)
	for _, at := range []Attempt{service("pipeline", "wrong"), service("nobody", "wrong")} {
		f.costs = nil
		f.a.Authenticate(ctx, at)
		if want := []check{digest}; !slices.Equal(f.costs, want) {
			t.Errorf("all digests, %s: checks = %+v, want %+v", at.Name, f.costs, want)
		}
	}
}
