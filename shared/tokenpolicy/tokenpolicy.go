// Package tokenpolicy says which Google tokens each role may obtain from
// gettoken: per role, the scopes, the ID-token audiences and the longest
// lifetime. What no role allows is refused.
package tokenpolicy

import (
	"encoding/json"
	"errors"
	"fmt"
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
	Scopes      []string `json:"scopes"`
	Audiences   []string `json:"audiences"`
	MaxLifetime Duration `json:"max_lifetime"`
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

// AllowScopes returns the longest lifetime any one of roles allows for all
// of scopes together, or ErrDenied. A single role must allow the whole
// request: scopes are not gathered from several roles.
func (p *Policy) AllowScopes(roles, scopes []string) (time.Duration, error) {
	return p.allow(roles, func(r Rule) bool {
		for _, s := range scopes {
			if !allows(r.Scopes, s) {
				return false
			}
		}
		return true
	}, fmt.Sprintf("scopes %s", strings.Join(scopes, " ")))
}

// AllowAudience returns the longest lifetime any of roles allows for an ID
// token for audience, or ErrDenied.
func (p *Policy) AllowAudience(roles []string, audience string) (time.Duration, error) {
	return p.allow(roles, func(r Rule) bool { return allows(r.Audiences, audience) }, fmt.Sprintf("audience %s", audience))
}

func (p *Policy) allow(roles []string, ok func(Rule) bool, what string) (time.Duration, error) {
	if p == nil || len(p.Roles) == 0 {
		return 0, fmt.Errorf("%w: no policy is configured (GETTOKEN_POLICY, GETTOKEN_POLICY_FILE or the secret gettoken-policy), so every request is refused", ErrDenied)
	}
	var best time.Duration
	for _, role := range roles {
		if r, found := p.Roles[role]; found && ok(r) {
			best = max(best, time.Duration(r.MaxLifetime))
		}
	}
	if best == 0 {
		return 0, fmt.Errorf("%w: none of the roles [%s] allows %s", ErrDenied, strings.Join(roles, ", "), what)
	}
	return best, nil
}
