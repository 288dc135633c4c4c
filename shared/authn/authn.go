// Package authn decides whether a name and a secret log in: lock-outs are
// checked and the attempt counted before any hash is computed, an unknown
// name costs what a known one of the grant's kind costs (a person's
// argon2id, a service's digest), and every refusal for bad credentials
// looks the same to the caller. It knows nothing of HTTP, so
// the token endpoint and a login page share it.
package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/lockout"
	"impo.com.uy/copetes/backend/shared/password"
)

// ErrBadCredentials is every refusal of a name and secret: unknown
// account, wrong secret, disabled account, wrong kind. Nothing in it tells
// them apart; the reason goes to the log only.
var ErrBadCredentials = errors.New("bad credentials")

// ErrBusy: the password hashes running already fill the hashing limits
// (processors and memory), and no room came free in time. Retry shortly.
var ErrBusy = errors.New("too many logins at once")

// LockedError refuses an attempt before any work: too many failures of
// the account, of the account from this address, of this device, or of
// the client's address. Retry after RetryAfter.
type LockedError struct {
	Subject    string // "account", "account from this address", "device" or "address"
	RetryAfter time.Duration
}

// Error implements error.
func (e *LockedError) Error() string {
	return fmt.Sprintf("too many failed attempts for this %s; retry in %s", e.Subject, e.RetryAfter.Round(time.Second))
}

// UnavailableError: the accounts or the lock-out state could not be read.
// Err wraps the cause (secrets.ErrUnavailable, store.ErrUnavailable, a
// missing secret…) for the caller to tell an outage from a
// misconfiguration.
type UnavailableError struct {
	What string
	Err  error
}

// Error implements error.
func (e *UnavailableError) Error() string { return "cannot " + e.What + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Attempt is one try to log in.
type Attempt struct {
	Name    string        // as typed
	Secret  string        // password or client secret
	Kind    accounts.Kind // the kind of account the grant is for
	Address string        // the client's address, for the per-address limit
	// Device names a device that proved, with a token login gave it, that
	// it logged in as Name before ("" for none; the caller verifies the
	// token and that it is bound to Name). An account-wide lock-out does
	// not shut it out.
	Device string
}

// Policies are the lock-out policies of the subjects an attempt counts
// against.
type Policies struct {
	// PerPair limits a person's failures from one address (and from one
	// known device).
	PerPair lockout.Policy
	// PerAccount limits a person's failures from anywhere; a known device
	// is not shut out by it.
	PerAccount lockout.Policy
	// PerAddress limits every failure from one address, people's and
	// services'. Services (high-entropy secrets, nothing to guess) are
	// limited by address only: knowing a client_id is no way to lock it.
	PerAddress lockout.Policy
	// IPv6Prefix is how many bits of an IPv6 address name one client.
	IPv6Prefix int
}

// Authenticator checks attempts.
type Authenticator struct {
	// Accounts returns the current accounts list.
	Accounts func(context.Context) (*accounts.List, error)
	Guard    lockout.Guard
	Policies Policies
	// Matches checks a secret against a hash: an argon2id hash within the
	// hashing limits, or failing with password.ErrBusy; a service
	// secret's digest at once. Every check of an attempt goes through it.
	Matches func(context.Context, password.Hashed, []byte) (bool, error)
	// Saturated, when set, reports that an argon2id hash would be refused
	// at once (password.Limiter.Saturated): such an attempt is refused
	// with ErrBusy before it is counted, rather than counted and uncounted
	// in the store. Under a flood this is most of what login does.
	Saturated func() bool
	// DummyCost is the least cost at which an unknown person is checked;
	// the list's costliest person's hash raises it.
	DummyCost password.Params
	// ContendedWait bounds how long an attempt waits for room under a
	// threshold that attempts in flight fill (2s when zero).
	ContendedWait time.Duration

	mu      sync.Mutex
	dummies map[password.Params]password.Hashed
	secret  password.Hashed // the dummy service secret's digest
}

// New returns an Authenticator.
func New(list func(context.Context) (*accounts.List, error), guard lockout.Guard, policies Policies,
	matches func(context.Context, password.Hashed, []byte) (bool, error), dummyCost password.Params) *Authenticator {
	return &Authenticator{Accounts: list, Guard: guard, Policies: policies, Matches: matches, DummyCost: dummyCost,
		dummies: map[password.Params]password.Hashed{}, secret: password.DummySecret()}
}

// dummy returns what a name that is no account of kind is checked
// against, so that it costs what an account of that kind costs. For a
// person: a hash of nothing at the costliest person's parameters, made
// once per parameters. For a service: the digest of nothing, once every
// service holds a secret's digest; while one still holds an argon2id hash
// (from before digests), a hash at the costliest service's parameters,
// as every client id cost then.
func (a *Authenticator) dummy(list *accounts.List, kind accounts.Kind) password.Hashed {
	p, slow := list.CostliestHash(kind)
	if kind == accounts.Service && !slow {
		return a.secret
	}
	if p.Cost() < a.DummyCost.Cost() {
		p = a.DummyCost
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	h, ok := a.dummies[p]
	if !ok {
		h = password.Dummy(p)
		a.dummies[p] = h
	}
	return h
}

// guarded is one subject an attempt counts against.
type guarded struct {
	what    string // for LockedError.Subject and the log
	subject string
	policy  lockout.Policy
}

// subjects lists what an attempt counts against, the address first.
func (a *Authenticator) subjects(at Attempt, normalized string) []guarded {
	p := a.Policies
	addr := lockout.AddressSubject(at.Address, p.IPv6Prefix)
	// Every login from an address counts there: an office behind one NAT
	// logging in at 9:00 must not make it one hot store entry.
	perAddress := p.PerAddress
	perAddress.Sharded = true
	out := []guarded{{"address", "login:addr:" + addr, perAddress}}
	if at.Kind == accounts.Service {
		return out
	}
	out = append(out, guarded{"account from this address", "login:pair:" + normalized + "\x00" + addr, p.PerPair})
	if at.Device != "" {
		return append(out, guarded{"device", "login:device:" + at.Device, p.PerPair})
	}
	return append(out, guarded{"account", "login:acct:" + normalized, p.PerAccount})
}

// Authenticate returns the account that at logs in as. It fails with
// ErrBadCredentials, *LockedError, ErrBusy or *UnavailableError. Every
// lock that applies is checked before the attempt is counted against any
// subject, and before any hash is computed.
func (a *Authenticator) Authenticate(ctx context.Context, at Attempt) (accounts.Account, error) {
	list, err := a.Accounts(ctx)
	if err != nil {
		return accounts.Account{}, &UnavailableError{What: "read the accounts", Err: err}
	}
	normalized := accounts.NormalizeName(at.Name)
	acct, hash, found := list.Lookup(normalized)
	subjects := a.subjects(at, normalized)
	for _, g := range subjects {
		if err := a.Guard.Check(ctx, g.subject); err != nil {
			return accounts.Account{}, a.guardError(ctx, err, g, at, acct, found)
		}
	}
	// A name of another kind is checked as a name that is no account: its
	// own hash costs what the other kind costs (a person's argon2id, a
	// service's digest), and the time would tell who exists.
	if !found || acct.Kind != at.Kind {
		hash = a.dummy(list, at.Kind)
	}
	if !hash.Fast() && a.Saturated != nil && a.Saturated() {
		return accounts.Account{}, fmt.Errorf("%w: %w", ErrBusy, password.ErrBusy)
	}
	tickets, err := a.admit(ctx, subjects, at, acct, found)
	if err != nil {
		return accounts.Account{}, err
	}
	ok, err := a.Matches(ctx, hash, []byte(at.Secret))
	if err == nil && !ok && hash.Fast() {
		// While one service still holds an argon2id hash, an unknown
		// client id costs one (see dummy); a service already moved to a
		// digest must then refuse at that cost too, or the quick refusals
		// would tell which client ids exist. Only refusals pay it: a
		// service with its right secret still logs in at machine speed.
		if slow := a.dummy(list, at.Kind); !slow.Fast() {
			_, err = a.Matches(ctx, slow, []byte(at.Secret))
		}
	}
	if err != nil {
		abandon(ctx, tickets...)
		if errors.Is(err, password.ErrBusy) {
			return accounts.Account{}, fmt.Errorf("%w: %w", ErrBusy, err)
		}
		return accounts.Account{}, err
	}
	reason := ""
	switch {
	case !found:
		reason = "unknown account"
	case acct.Kind != at.Kind:
		reason = "wrong kind of account for this grant"
	case !ok:
		reason = "wrong secret"
	case acct.Disabled:
		reason = "account disabled"
	}
	if reason != "" {
		// The name is logged only when it names an account: a mistyped
		// name may be a password typed into the wrong field.
		attrs := []any{"reason", reason, "address", at.Address, "kind", at.Kind}
		if found {
			attrs = append(attrs, "account", acct.Name)
		}
		slog.InfoContext(ctx, "login refused", attrs...)
		for i, t := range tickets {
			if err := t.Failed(ctx); err != nil {
				slog.WarnContext(ctx, "could not count a failed login", "subject", subjects[i].what, "error", err.Error())
			}
		}
		return accounts.Account{}, ErrBadCredentials
	}
	// The account (and its address, its device) proved itself: its
	// failures are forgotten. The address, which others may share, only
	// has this attempt uncounted. A success that could not be recorded
	// only leaves a count behind; the login itself stands.
	for i, t := range tickets {
		if err := t.Succeeded(ctx, subjects[i].what != "address"); err != nil {
			slog.WarnContext(ctx, "could not record a successful login", "subject", subjects[i].what, "error", err.Error())
		}
	}
	return acct, nil
}

// admit reserves the attempt with every subject's guard. While the
// attempts in flight for a subject fill the room under its threshold
// (several correct logins of one account at once), it waits for them to
// be judged and tries again, up to ContendedWait; then it gives up with
// ErrBusy, never with a lock-out: nothing failed.
func (a *Authenticator) admit(ctx context.Context, subjects []guarded, at Attempt, acct accounts.Account, found bool) ([]*lockout.Ticket, error) {
	wait := a.ContendedWait
	if wait == 0 {
		wait = 2 * time.Second
	}
	deadline := time.Now().Add(wait)
	pause := 5 * time.Millisecond
	for {
		tickets := make([]*lockout.Ticket, 0, len(subjects))
		var err error
		var g guarded
		for _, g = range subjects {
			var t *lockout.Ticket
			if t, err = a.Guard.Begin(ctx, g.policy, g.subject); err != nil {
				break
			}
			tickets = append(tickets, t)
		}
		if err == nil {
			return tickets, nil
		}
		abandon(ctx, tickets...)
		if !errors.Is(err, lockout.ErrContended) {
			return nil, a.guardError(ctx, err, g, at, acct, found)
		}
		if !time.Now().Add(pause).Before(deadline) {
			return nil, fmt.Errorf("%w: %s: %w", ErrBusy, g.what, err)
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// Unlock lifts the account-wide lock-out of the account name and forgets
// its failures: an operator's act (cmd/admin account unlock). Locks of one
// address or one device end by themselves.
func Unlock(ctx context.Context, g lockout.Guard, name string) error {
	return g.Unlock(ctx, "login:acct:"+accounts.NormalizeName(name))
}

func abandon(ctx context.Context, tickets ...*lockout.Ticket) {
	for _, t := range tickets {
		if err := t.Abandoned(ctx); err != nil {
			slog.WarnContext(ctx, "could not uncount an unjudged login attempt", "error", err.Error())
		}
	}
}

// guardError maps a refusal by a lock, and logs it with what an operator
// needs: which lock, and the account when the name is one.
func (a *Authenticator) guardError(ctx context.Context, err error, g guarded, at Attempt, acct accounts.Account, found bool) error {
	var le *lockout.LockedError
	if errors.As(err, &le) {
		attrs := []any{"locked", g.what, "retry_after_s", max(int64((le.RetryAfter+time.Second-1)/time.Second), 1), "address", at.Address}
		if found {
			attrs = append(attrs, "account", acct.Name)
		}
		slog.WarnContext(ctx, "login locked out", attrs...)
		return &LockedError{Subject: g.what, RetryAfter: le.RetryAfter}
	}
	return &UnavailableError{What: "check login attempts", Err: err}
}
