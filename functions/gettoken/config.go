package gettoken

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"impo.com.uy/copetes/backend/shared/env"
	"impo.com.uy/copetes/backend/shared/googletoken"
	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/tokenpolicy"
)

// DefaultKeySecret is the id of the secret holding the service-account key
// of the key and selfsigned sources (GETTOKEN_KEY_SECRET).
const DefaultKeySecret = "gettoken-key"

// DefaultPolicySecret is the id of the secret holding the gettoken policy,
// read when GETTOKEN_POLICY and GETTOKEN_POLICY_FILE are unset.
const DefaultPolicySecret = "gettoken-policy"

// KeySecretFromEnv names the service-account key's secret:
// GETTOKEN_KEY_SECRET, or DefaultKeySecret.
func KeySecretFromEnv() string { return env.String("GETTOKEN_KEY_SECRET", DefaultKeySecret) }

// PolicySecretFromEnv names the policy's secret: GETTOKEN_POLICY_SECRET,
// or DefaultPolicySecret.
func PolicySecretFromEnv() string { return env.String("GETTOKEN_POLICY_SECRET", DefaultPolicySecret) }

// config is gettoken's configuration.
type config struct {
	Source      string        // GETTOKEN_SOURCE: selfsigned | adc | impersonate | key
	KeySecret   string        // GETTOKEN_KEY_SECRET
	IAMEndpoint string        // GETTOKEN_IAM_ENDPOINT
	MaxLifetime time.Duration // GETTOKEN_MAX_LIFETIME: the impersonate source's ceiling
	Margin      time.Duration // GETTOKEN_REFRESH_MARGIN
	RateLimit   int64         // GETTOKEN_RATE_LIMIT per RateWindow
	RateWindow  time.Duration // GETTOKEN_RATE_WINDOW
	CORSOrigins []string      // CORS_ALLOWED_ORIGINS: staff browsers call gettoken after login
	// Policy is the policy given inline (GETTOKEN_POLICY), fixed for the
	// life of the instance; nil to read PolicySecret.
	Policy *tokenpolicy.Policy
	// PolicySecret names the secret (an id, or an absolute file path)
	// that holds the policy: GETTOKEN_POLICY_FILE, else
	// GETTOKEN_POLICY_SECRET (gettoken-policy). It is read like every
	// other secret, so an edit is seen within the secrets' cache time.
	// "" with a nil Policy: no policy, every request refused.
	PolicySecret string
	// Deployed: running on Cloud Run (env.Deployed), where a role must name
	// its vended account and no role may name RuntimeAccount.
	Deployed bool
	// RuntimeAccount is the account gettoken itself runs as (from the
	// metadata server, when deployed): never one it hands out.
	RuntimeAccount string
}

// sources are the values of GETTOKEN_SOURCE; the first two hand out an
// identity of gettoken's own, so they serve local runs only.
var sources = []string{"selfsigned", "adc", "impersonate", "key"}

func configFromEnv() (config, error) {
	c := config{
		// The source is chosen explicitly in production (deploy.sh sets
		// it); it never follows from another variable such as
		// GOOGLE_CLOUD_PROJECT, which a local run may set for other
		// reasons.
		Source:      env.String("GETTOKEN_SOURCE", "selfsigned"),
		Deployed:    env.Deployed(),
		KeySecret:   KeySecretFromEnv(),
		IAMEndpoint: env.String("GETTOKEN_IAM_ENDPOINT", ""),
		CORSOrigins: env.List("CORS_ALLOWED_ORIGINS"),
	}
	switch {
	case strings.HasPrefix(c.Source, "impersonate:"):
		return c, &env.Error{Var: "GETTOKEN_SOURCE", Want: "impersonate, without an account: each policy role names the service account its tokens are for (service_account)"}
	case !slices.Contains(sources, c.Source):
		return c, &env.Error{Var: "GETTOKEN_SOURCE", Want: "selfsigned, adc, impersonate or key"}
	case c.Deployed && (c.Source == "adc" || c.Source == "selfsigned"):
		return c, &env.Error{Var: "GETTOKEN_SOURCE", Want: c.Source + " hands out gettoken's own identity and serves local runs only: deployed, use impersonate (or key)"}
	}
	var err error
	if c.MaxLifetime, err = env.Duration("GETTOKEN_MAX_LIFETIME", time.Hour, 10*time.Minute, 12*time.Hour); err != nil {
		return c, err
	}
	if c.Margin, err = env.Duration("GETTOKEN_REFRESH_MARGIN", 5*time.Minute, time.Minute, 30*time.Minute); err != nil {
		return c, err
	}
	limit, err := env.Int("GETTOKEN_RATE_LIMIT", 60, 1, 1_000_000)
	if err != nil {
		return c, err
	}
	c.RateLimit = int64(limit)
	if c.RateWindow, err = env.Duration("GETTOKEN_RATE_WINDOW", time.Minute, time.Second, time.Hour); err != nil {
		return c, err
	}
	inline, file := env.String("GETTOKEN_POLICY", ""), env.String("GETTOKEN_POLICY_FILE", "")
	switch {
	case inline != "" && file != "":
		return c, &env.Error{Var: "GETTOKEN_POLICY_FILE", Want: "set GETTOKEN_POLICY or GETTOKEN_POLICY_FILE, not both"}
	case inline != "":
		c.Policy, err = tokenpolicy.Parse([]byte(inline))
		return c, err
	case file != "":
		// A file is a secret named by its absolute path.
		if c.PolicySecret, err = filepath.Abs(file); err != nil {
			return c, &env.Error{Var: "GETTOKEN_POLICY_FILE", Want: "a file path"}
		}
	default:
		c.PolicySecret = PolicySecretFromEnv()
	}
	return c, nil
}

// parsePolicy reads a policy and checks it (checkPolicy).
func (c config) parsePolicy(data []byte) (*tokenpolicy.Policy, error) {
	p, err := tokenpolicy.Parse(data)
	if err != nil {
		return nil, err
	}
	return p, c.checkPolicy(p)
}

// checkPolicy refuses a policy that would hand out an identity it must
// not: deployed (or impersonating), every role names its vended account,
// and none is the account gettoken runs as. It warns of wildcards.
func (c config) checkPolicy(p *tokenpolicy.Policy) error {
	if c.Deployed || c.Source == "impersonate" {
		if roles := p.Unaccounted(); len(roles) > 0 {
			return fmt.Errorf("gettoken policy: roles %s name no service_account: each role receives tokens for its own vended account", strings.Join(roles, ", "))
		}
	}
	if c.RuntimeAccount != "" && slices.Contains(p.Accounts(), c.RuntimeAccount) {
		return fmt.Errorf("gettoken policy: a role names %s, the account gettoken runs as: a vended account is never a runtime account", c.RuntimeAccount)
	}
	if w := p.Wildcards(); len(w) > 0 {
		slog.Warn("gettoken policy allows any scope or audience (\"*\"): fit for local runs only", "roles", w)
	}
	return nil
}

// policySource returns how the server gets the current policy. A policy
// secret that does not exist is no policy: every request is refused, with
// a message that says so.
func (c config) policySource(src secrets.Source) func(context.Context) (*tokenpolicy.Policy, error) {
	if c.Policy != nil || c.PolicySecret == "" {
		return func(context.Context) (*tokenpolicy.Policy, error) { return c.Policy, nil }
	}
	policy := &secrets.Decoded[*tokenpolicy.Policy]{Source: src, Name: c.PolicySecret, Decode: c.parsePolicy}
	return func(ctx context.Context) (*tokenpolicy.Policy, error) {
		p, err := policy.Get(ctx)
		if errors.Is(err, secrets.ErrNotFound) {
			return nil, nil
		}
		return p, err
	}
}

// newSource builds the token source that GETTOKEN_SOURCE names.
func newSource(c config, src secrets.Source, now func() time.Time) (googletoken.Source, error) {
	key := &secrets.Decoded[*googletoken.ServiceAccountKey]{Source: src, Name: c.KeySecret, Decode: googletoken.ParseKey}
	getKey := func(ctx context.Context) (*googletoken.ServiceAccountKey, error) { return key.Get(ctx) }
	switch {
	case c.Source == "adc":
		return googletoken.ADC{}, nil
	case c.Source == "key":
		return googletoken.Key{Key: getKey}, nil
	case c.Source == "selfsigned":
		return googletoken.SelfSigned{Key: getKey, Now: now}, nil
	case c.Source == "impersonate":
		return googletoken.Impersonate{Endpoint: c.IAMEndpoint, MaxLife: c.MaxLifetime}, nil
	}
	return nil, &env.Error{Var: "GETTOKEN_SOURCE", Want: "selfsigned, adc, impersonate or key"}
}
