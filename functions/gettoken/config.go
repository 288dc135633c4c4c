package gettoken

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"impo.com.uy/copetes/backend/shared/env"
	"impo.com.uy/copetes/backend/shared/googletoken"
	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/tokenpolicy"
)

// config is gettoken's configuration.
type config struct {
	Source      string        // GETTOKEN_SOURCE: adc | impersonate:<email> | key | selfsigned
	KeySecret   string        // GETTOKEN_KEY_SECRET
	IAMEndpoint string        // GETTOKEN_IAM_ENDPOINT
	MaxLifetime time.Duration // GETTOKEN_MAX_LIFETIME: the impersonate source's ceiling
	Margin      time.Duration // GETTOKEN_REFRESH_MARGIN
	RateLimit   int64         // GETTOKEN_RATE_LIMIT per RateWindow
	RateWindow  time.Duration // GETTOKEN_RATE_WINDOW
	CORSOrigins []string      // CORS_ALLOWED_ORIGINS: staff browsers call gettoken after login
	Policy      *tokenpolicy.Policy
}

func configFromEnv() (config, error) {
	def := "selfsigned"
	if env.String("GOOGLE_CLOUD_PROJECT", "") != "" {
		def = "adc"
	}
	c := config{
		Source:      env.String("GETTOKEN_SOURCE", def),
		KeySecret:   env.String("GETTOKEN_KEY_SECRET", "gettoken-key"),
		IAMEndpoint: env.String("GETTOKEN_IAM_ENDPOINT", ""),
		CORSOrigins: env.List("CORS_ALLOWED_ORIGINS"),
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
	c.Policy, err = policyFromEnv()
	return c, err
}

// policyFromEnv reads the policy from GETTOKEN_POLICY (the JSON itself) or
// GETTOKEN_POLICY_FILE (a path). Neither is no policy: every request is
// refused, with a message that says so.
func policyFromEnv() (*tokenpolicy.Policy, error) {
	inline, file := env.String("GETTOKEN_POLICY", ""), env.String("GETTOKEN_POLICY_FILE", "")
	var data []byte
	switch {
	case inline != "" && file != "":
		return nil, &env.Error{Var: "GETTOKEN_POLICY_FILE", Want: "set GETTOKEN_POLICY or GETTOKEN_POLICY_FILE, not both"}
	case inline != "":
		data = []byte(inline)
	case file != "":
		var err error
		if data, err = os.ReadFile(file); err != nil {
			return nil, fmt.Errorf("GETTOKEN_POLICY_FILE: %w", err)
		}
	default:
		slog.Warn("gettoken has no policy (GETTOKEN_POLICY or GETTOKEN_POLICY_FILE): every request will be refused")
		return nil, nil
	}
	p, err := tokenpolicy.Parse(data)
	if err != nil {
		return nil, err
	}
	if w := p.Wildcards(); len(w) > 0 {
		slog.Warn("gettoken policy allows any scope or audience (\"*\"): fit for local runs only", "roles", w)
	}
	return p, nil
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
	case strings.HasPrefix(c.Source, "impersonate:") && strings.Contains(c.Source, "@"):
		return googletoken.Impersonate{Target: strings.TrimPrefix(c.Source, "impersonate:"),
			Endpoint: c.IAMEndpoint, MaxLife: c.MaxLifetime}, nil
	}
	return nil, &env.Error{Var: "GETTOKEN_SOURCE", Want: "adc, impersonate:<service-account-email>, key or selfsigned"}
}
