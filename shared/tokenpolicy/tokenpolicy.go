// Package tokenpolicy says which Google tokens each role may obtain from
// gettoken: per role, the service account the tokens are minted for, the
// scopes, the ID-token audiences and the longest lifetime. What no role
// allows is refused.
package tokenpolicy

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"impo.com.uy/copetes/backend/shared/strictjson"
)

// Any, as a scope or an audience, allows every one: for the local dev
// policy, never for production.
const Any = "*"

// DefaultMaxLifetime applies to a rule without max_lifetime.
const DefaultMaxLifetime = time.Hour

// Rule is what one role may obtain.
type Rule struct {
	// ServiceAccount is the account whose tokens the role receives (a
	// "vended" account, never one a function runs as). The impersonate
	// source requires it; a source with an identity of its own (a key,
	// local runs) refuses a role that names another account.
	ServiceAccount string   `json:"service_account"`
	Scopes         []string `json:"scopes"`
	Audiences      []string `json:"audiences"`
	MaxLifetime    Duration `json:"max_lifetime"`
}

// Duration is a time.Duration written as a Go duration string ("30m").
type Duration time.Duration

// UnmarshalJSON reads "30m", "1h".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`max_lifetime: want a duration string such as "30m"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 || v > 12*time.Hour {
		return fmt.Errorf("max_lifetime %q: want a duration between 1s and 12h", s)
	}
	*d = Duration(v)
	return nil
}

// Policy maps roles to rules.
type Policy struct {
	Roles map[string]Rule `json:"roles"`
}

// Parse reads a policy: {"roles": {"<role>": {"scopes": […], "audiences":
// […], "max_lifetime": "1h"}}}.
func Parse(data []byte) (*Policy, error) {
	var p Policy
	if err := strictjson.Decode(data, &p); err != nil {
		return nil, fmt.Errorf("gettoken policy: %w", err)
	}
	for role, r := range p.Roles {
		if a := r.ServiceAccount; a != "" && !accountRE.MatchString(a) {
			return nil, fmt.Errorf("gettoken policy: role %q: service_account %q is not a service account email (NAME@PROJECT.iam.gserviceaccount.com)", role, a)
		}
		for _, s := range r.Scopes {
			if s != Any && !strings.HasPrefix(s, "https://") {
				return nil, fmt.Errorf("gettoken policy: role %q: scope %q is not a URL (https://www.googleapis.com/auth/…) or %q", role, s, Any)
			}
		}
		for _, a := range r.Audiences {
			if a == "" {
				return nil, fmt.Errorf("gettoken policy: role %q: empty audience", role)
			}
		}
		if r.MaxLifetime == 0 {
			r.MaxLifetime = Duration(DefaultMaxLifetime)
			p.Roles[role] = r
		}
	}
	return &p, nil
}

// accountRE is a service account's email: user-managed
// (NAME@PROJECT.iam.gserviceaccount.com) or Google-managed
// (…@…gserviceaccount.com).
var accountRE = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.gserviceaccount\.com$`)

// Accounts lists the service accounts the roles name, sorted, once each.
func (p *Policy) Accounts() []string {
	var out []string
	for _, r := range p.Roles {
		if r.ServiceAccount != "" {
			out = append(out, r.ServiceAccount)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Unaccounted lists the roles that name no service account, sorted.
func (p *Policy) Unaccounted() []string {
	var roles []string
	for role, r := range p.Roles {
		if r.ServiceAccount == "" {
			roles = append(roles, role)
		}
	}
	slices.Sort(roles)
	return roles
}

// Wildcards lists the roles that allow Any, so that a caller can warn.
func (p *Policy) Wildcards() []string {
	var roles []string
	for role, r := range p.Roles {
		if slices.Contains(r.Scopes, Any) || slices.Contains(r.Audiences, Any) {
			roles = append(roles, role)
		}
	}
	slices.Sort(roles)
	return roles
}

// ErrDenied wraps every refusal; its message says what is missing.
var ErrDenied = errors.New("not allowed by the gettoken policy")

func allows(list []string, v string) bool {
	return slices.Contains(list, Any) || slices.Contains(list, v)
}

// Grant is what the policy gives a request: the role that allows it, the
// account the token is for ("" when the role names none) and the longest
// lifetime.
type Grant struct {
	Role           string
	ServiceAccount string
	MaxLifetime    time.Duration
}

// AllowScopes returns the grant of the one of roles that allows all of
// scopes together, or ErrDenied. A single role must allow the whole
// request: scopes are not gathered from several roles. Where several
// allow it, the longest lifetime wins, then the first role by name.
func (p *Policy) AllowScopes(roles, scopes []string) (Grant, error) {
	return p.allow(roles, func(r Rule) bool {
		for _, s := range scopes {
			if !allows(r.Scopes, s) {
				return false
			}
		}
		return true
	}, func() string { return "scopes " + strings.Join(scopes, " ") })
}

// AllowAudience returns the grant of the one of roles that allows an ID
// token for audience, chosen as AllowScopes does, or ErrDenied.
func (p *Policy) AllowAudience(roles []string, audience string) (Grant, error) {
	return p.allow(roles, func(r Rule) bool { return allows(r.Audiences, audience) }, func() string { return "audience " + audience })
}

// allow finds the grant; what names the request for a refusal. It runs on
// every request gettoken serves, so it allocates nothing when it grants.
func (p *Policy) allow(roles []string, ok func(Rule) bool, what func() string) (Grant, error) {
	if p == nil || len(p.Roles) == 0 {
		return Grant{}, fmt.Errorf("%w: no policy is configured (GETTOKEN_POLICY, GETTOKEN_POLICY_FILE or the secret gettoken-policy), so every request is refused", ErrDenied)
	}
	var best Grant
	for _, role := range roles {
		r, found := p.Roles[role]
		if !found || !ok(r) {
			continue
		}
		// The longest lifetime, then the first role by name.
		if life := time.Duration(r.MaxLifetime); life > best.MaxLifetime || life == best.MaxLifetime && role < best.Role {
			best = Grant{Role: role, ServiceAccount: r.ServiceAccount, MaxLifetime: life}
		}
	}
	if best.Role == "" {
		return Grant{}, fmt.Errorf("%w: none of the roles [%s] allows %s", ErrDenied, strings.Join(roles, ", "), what())
	}
	return best, nil
}
