package authn

import (
	"context"
	"errors"
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
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	hash := func(pw string) string {
		h, err := password.Hash([]byte(pw), password.Default)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	data, err := accounts.Marshal([]accounts.Account{
		{Name: "ana", Kind: accounts.User, Hash: hash("ana-pw"), Roles: []string{"editor"}},
		{Name: "old", Kind: accounts.User, Hash: hash("old-pw"), Disabled: true},
		{Name: "pipeline", Kind: accounts.Service, Hash: hash("pipeline-secret"), Roles: []string{"pipeline"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{}
	if f.list, err = accounts.Parse(data); err != nil {
		t.Fatal(err)
	}
	policy := lockout.Policy{Threshold: 3, Window: time.Hour, Base: 30 * time.Second, Max: time.Minute}
	addr := policy
	addr.Threshold = 100
	guard := lockout.Guard{Store: store.NewMemory(nil), Now: time.Now}
	f.a = New(func(context.Context) (*accounts.List, error) { return f.list, nil }, guard, policy, addr,
		func(_ context.Context, h password.Hashed, pw []byte) (bool, error) {
			f.hashes.Add(1)
			return h.Matches(pw), nil
		}, password.Default)
	return f
}

func user(name, pw string) Attempt {
	return Attempt{Name: name, Secret: pw, Kind: accounts.User, Address: "192.0.2.1"}
}

func TestAuthenticate_EveryBadCredentialIsOneErrorAndCostsOneHash(t *testing.T) {
	tests := []struct {
		name string
		at   Attempt
	}{
		{"wrong password", user("ana", "nope")},
		{"unknown account", user("nobody", "nope")},
		{"disabled account", user("old", "old-pw")},
		{"a service at the person grant", user("pipeline", "pipeline-secret")},
		{"a person at the service grant", Attempt{Name: "ana", Secret: "ana-pw", Kind: accounts.Service, Address: "192.0.2.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			_, err := f.a.Authenticate(context.Background(), tt.at)
			if err != ErrBadCredentials {
				t.Fatalf("error = %v, want exactly ErrBadCredentials", err)
			}
			if n := f.hashes.Load(); n != 1 {
				t.Fatalf("%d hashes computed, want 1: time must not tell the cases apart", n)
			}
		})
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
	for range 3 {
		if _, err := f.a.Authenticate(ctx, user("ana", "nope")); err != ErrBadCredentials {
			t.Fatal(err)
		}
	}
	before := f.hashes.Load()
	_, err := f.a.Authenticate(ctx, user("ana", "ana-pw"))
	var locked *LockedError
	if !errors.As(err, &locked) || locked.Subject != "account" || locked.RetryAfter <= 0 {
		t.Fatalf("error = %v, want *LockedError for the account", err)
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
