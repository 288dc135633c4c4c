// Package vending decides which Google token an authenticated caller is
// given: one of its roles must allow the scopes or the audience under the
// gettoken policy, the token is minted as that role's service account, and
// the lifetime asked for must fit both what the role allows and what the
// token source can mint. It knows nothing of HTTP.
package vending

import (
	"fmt"
	"slices"
	"time"

	"impo.com.uy/copetes/backend/shared/googletoken"
	"impo.com.uy/copetes/backend/shared/tokenpolicy"
)

// LifetimeStep is the granularity of the lifetimes minted to order: a
// request is served by a token minted for its lifetime rounded down to
// this step, never for a longer one, so that callers share tokens.
const LifetimeStep = 5 * time.Minute

// Ask is what a caller asked for: scopes (an access token) or an audience
// (an ID token), and a lifetime (0 for the most its roles allow).
type Ask struct {
	Scopes   []string
	Audience string
	Lifetime time.Duration
}

// ErrDenied wraps every refusal by the policy (tokenpolicy.ErrDenied);
// the message says what is missing.
var ErrDenied = tokenpolicy.ErrDenied

// UnservableError: the request is allowed, but not as asked (a lifetime
// above the role's, or one the source cannot mint). Its message says why.
type UnservableError struct{ msg string }

// Error implements error.
func (e *UnservableError) Error() string { return e.msg }

func unservable(format string, args ...any) error {
	return &UnservableError{msg: fmt.Sprintf(format, args...)}
}

// Planner plans requests for one token source.
type Planner struct {
	Source googletoken.Source // only its name and its lifetimes are used
	Margin time.Duration      // the cache's refresh margin
}

// Plan checks ask for a caller with roles against policy (nil: none
// configured, everything refused) and returns what to mint. It fails with
// an error wrapping ErrDenied, or an *UnservableError.
func (p Planner) Plan(policy *tokenpolicy.Policy, roles []string, ask Ask) (googletoken.Request, error) {
	req := googletoken.Request{Kind: googletoken.Access, Audience: ask.Audience}
	var grant tokenpolicy.Grant
	var err error
	if ask.Audience != "" {
		req.Kind = googletoken.ID
		grant, err = policy.AllowAudience(roles, ask.Audience)
	} else {
		req.Scopes = sortedSet(ask.Scopes)
		grant, err = policy.AllowScopes(roles, req.Scopes)
	}
	if err != nil {
		return req, err
	}
	req.Account = grant.ServiceAccount
	allowed := grant.MaxLifetime
	if ask.Lifetime > allowed {
		return req, unservable("lifetime %ds is above the %ds your roles allow", int64(ask.Lifetime/time.Second), int64(allowed/time.Second))
	}
	fixed, most := p.Source.Lifetime(req.Kind)
	asked := ask.Lifetime
	if asked == 0 {
		asked = min(allowed, most)
	}
	if fixed {
		if asked < most {
			return req, unservable("the %s token source mints tokens that live %s; it cannot make one for %s (the lifetime asked for, or the most your roles allow): use a source that mints to order (impersonate, selfsigned) or allow %s",
				p.Source.Name(), most, asked, most)
		}
		return req, nil
	}
	req.Lifetime = min(asked, most).Truncate(LifetimeStep)
	if req.Lifetime <= p.Margin {
		return req, unservable("lifetime must be at least %ds (the refresh margin plus %s)", int64((p.Margin+LifetimeStep)/time.Second), LifetimeStep)
	}
	return req, nil
}

// sortedSet returns scopes sorted, without repeats: scopes itself when it
// already is (one scope, usually), else a sorted copy.
func sortedSet(scopes []string) []string {
	for i := 1; i < len(scopes); i++ {
		if scopes[i-1] >= scopes[i] {
			return slices.Compact(slices.Sorted(slices.Values(scopes)))
		}
	}
	return scopes
}
