// Package authn decides whether a name and a secret log in: lock-outs are
// checked and the attempt counted before any hash is computed, an unknown
// name costs what a known one costs, and every refusal for bad
// credentials looks the same to the caller. It knows nothing of HTTP, so
// the token endpoint and a login page share it.
package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/lockout"
	"impo.com.uy/copetes/backend/shared/password"
)

// ErrBadCredentials is every refusal of a name and secret: unknown
// account, wrong secret, disabled account, wrong kind. Nothing in it tells
// them apart; the reason goes to the log only.
var ErrBadCredentials = errors.New("bad credentials")

// ErrBusy: the password hashes running already fill the memory budget,
// and no room came free in time. Retry shortly.
var ErrBusy = errors.New("too many logins at once")

// LockedError refuses an attempt before any work: too many failures of
// the account or of the client's address. Retry after RetryAfter.
type LockedError struct {
	Subject    string // "account" or "address"
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
	Address string        // the client's address, for the per-address lock-out
}

// Authenticator checks attempts.
type Authenticator struct {
	// Accounts returns the current accounts list.
	Accounts   func(context.Context) (*accounts.List, error)
	Guard      lockout.Guard
	PerAccount lockout.Policy
	PerAddress lockout.Policy
	// Matches checks a secret against a hash within the hashing budget,
	// or fails with password.ErrBusy.
	Matches func(context.Context, password.Hashed, []byte) (bool, error)
	// dummy is checked for unknown names.
	dummy password.Hashed
}

// New returns an Authenticator whose unknown names are checked against a
// dummy hash of cost dummy (made now: it costs one hash).
func New(list func(context.Context) (*accounts.List, error), guard lockout.Guard, perAccount, perAddress lockout.Policy,
	matches func(context.Context, password.Hashed, []byte) (bool, error), dummy password.Params) *Authenticator {
	return &Authenticator{Accounts: list, Guard: guard, PerAccount: perAccount, PerAddress: perAddress,
		Matches: matches, dummy: password.Dummy(dummy)}
}

// Authenticate returns the account that a logs in as. It fails with
// ErrBadCredentials, *LockedError, ErrBusy or *UnavailableError.
func (a *Authenticator) Authenticate(ctx context.Context, at Attempt) (accounts.Account, error) {
	addrTicket, err := a.Guard.Begin(ctx, a.PerAddress, "login:addr:"+at.Address)
	if err != nil {
		return accounts.Account{}, a.guardError(ctx, err, "address", at.Address)
	}
	normalized := accounts.NormalizeName(at.Name)
	acctTicket, err := a.Guard.Begin(ctx, a.PerAccount, "login:acct:"+normalized)
	if err != nil {
		return accounts.Account{}, a.guardError(ctx, err, "account", "")
	}
	list, err := a.Accounts(ctx)
	if err != nil {
		abandon(ctx, addrTicket, acctTicket)
		return accounts.Account{}, &UnavailableError{What: "read the accounts", Err: err}
	}
	acct, hash, found := list.Lookup(normalized)
	if !found {
		hash = a.dummy
	}
	ok, err := a.Matches(ctx, hash, []byte(at.Secret))
	if err != nil {
		abandon(ctx, addrTicket, acctTicket)
		if errors.Is(err, password.ErrBusy) {
			return accounts.Account{}, fmt.Errorf("%w: %w", ErrBusy, err)
		}
		return accounts.Account{}, err
	}
	reason := ""
	switch {
	case !found:
		reason = "unknown account"
	case !ok:
		reason = "wrong secret"
	case acct.Disabled:
		reason = "account disabled"
	case acct.Kind != at.Kind:
		reason = "wrong kind of account for this grant"
	}
	if reason != "" {
		// The name is logged only when it names an account: a mistyped
		// name may be a password typed into the wrong field.
		attrs := []any{"reason", reason, "address", at.Address, "kind", at.Kind}
		if found {
			attrs = append(attrs, "account", acct.Name)
		}
		slog.InfoContext(ctx, "login refused", attrs...)
		return accounts.Account{}, ErrBadCredentials
	}
	// A success that could not be recorded only leaves a count behind; the
	// login itself stands.
	if err := acctTicket.Succeeded(ctx, true); err != nil {
		slog.WarnContext(ctx, "could not reset the failure count", "account", acct.Name, "error", err.Error())
	}
	if err := addrTicket.Succeeded(ctx, false); err != nil {
		slog.WarnContext(ctx, "could not uncount a successful login", "address", at.Address, "error", err.Error())
	}
	return acct, nil
}

func abandon(ctx context.Context, tickets ...*lockout.Ticket) {
	for _, t := range tickets {
		if err := t.Abandoned(ctx); err != nil {
			slog.WarnContext(ctx, "could not uncount an unjudged login attempt", "error", err.Error())
		}
	}
}

func (a *Authenticator) guardError(ctx context.Context, err error, what, addr string) error {
	var le *lockout.LockedError
	if errors.As(err, &le) {
		attrs := []any{"locked", what, "retry_after_s", max(int64((le.RetryAfter+time.Second-1)/time.Second), 1)}
		if addr != "" {
			attrs = append(attrs, "address", addr)
		}
		slog.WarnContext(ctx, "login locked out", attrs...)
		return &LockedError{Subject: what, RetryAfter: le.RetryAfter}
	}
	return &UnavailableError{What: "check login attempts", Err: err}
}
