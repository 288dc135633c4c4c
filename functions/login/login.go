// Package login is the session authority: it checks passwords and service
// credentials, issues session tokens, publishes its public keys, and
// introspects and revokes tokens. Entry point: Login.
package login

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/authn"
	"impo.com.uy/copetes/backend/shared/clients"
	"impo.com.uy/copetes/backend/shared/entrypoint"
	"impo.com.uy/copetes/backend/shared/httpapi"
	"impo.com.uy/copetes/backend/shared/lockout"
	"impo.com.uy/copetes/backend/shared/oauth"
	"impo.com.uy/copetes/backend/shared/password"
	"impo.com.uy/copetes/backend/shared/platform"
	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/session"
)

func init() { entrypoint.HTTP("Login", build) }

// build wires login from the environment over the process's platform.
func build(ctx context.Context, p *platform.Platform) (http.Handler, error) {
	cfg, err := configFromEnv()
	if err != nil {
		return nil, err
	}
	auth, err := session.FromEnv(p.Secrets, p.Sessions, p.SharedStore)
	if err != nil {
		return nil, err
	}
	if err := checkSigningKeys(ctx, auth); err != nil {
		return nil, err
	}
	s := newServer(cfg, p, auth, time.Now)
	slog.InfoContext(ctx, "password hashing limits", "hashes_at_once", s.limiter.Slots(cfg.HashParams),
		"concurrency", cfg.HashConcurrency, "memory_budget_mib", cfg.HashMemoryKiB>>10,
		"queue", cfg.HashQueue, "wait", cfg.HashWait.String())
	return s.routes(), nil
}

// checkSigningKeys reads the signing keys once at start. A key set that is
// missing, unreadable or broken (a key whose private half does not match
// its public half would sign tokens no verifier accepts) fails the build:
// entrypoint answers 500 "misconfigured" and logs why, until an operator
// fixes the secret. An outage does not: requests answer 503 until it ends.
func checkSigningKeys(ctx context.Context, auth *session.Authority) error {
	_, err := auth.Keys.Get(ctx)
	if err == nil {
		return nil
	}
	if secretsBroken(err) {
		return fmt.Errorf("login will not start on signing keys it cannot use: %w", err)
	}
	slog.WarnContext(ctx, "cannot read the signing keys at start; each request will try again",
		"secret", auth.Config.KeysSecret, "error", err.Error())
	return nil
}

// server holds login's parts; tests build it with newServer.
type server struct {
	cfg     config
	auth    *session.Authority
	authn   *authn.Authenticator
	limiter *password.Limiter // bounds people's argon2id hashes
	clients *secrets.Decoded[*clients.List]
	codes   oauth.Codes
	refresh oauth.Refresh
	now     func() time.Time
}

func newServer(cfg config, p *platform.Platform, auth *session.Authority, now func() time.Time) *server {
	list := &secrets.Decoded[*accounts.List]{Source: p.Secrets, Name: cfg.AccountsSecret, Decode: accounts.Parse}
	limiter := password.NewLimiter(password.LimiterConfig{
		Concurrency: cfg.HashConcurrency, BudgetKiB: cfg.HashMemoryKiB, Wait: cfg.HashWait, Queue: cfg.HashQueue,
	})
	a := authn.New(list.Get, lockout.Guard{Store: p.Store, Now: now}, authn.Policies{
		PerPair: cfg.PerPair, PerAccount: cfg.PerAccount, PerAddress: cfg.PerAddress, IPv6Prefix: cfg.IPv6Prefix,
	}, limiter.Matches, cfg.HashParams)
	a.Saturated = limiter.Saturated
	return &server{
		cfg: cfg, auth: auth, authn: a, limiter: limiter, now: now,
		clients: &secrets.Decoded[*clients.List]{Source: p.Secrets, Name: cfg.ClientsSecret, Decode: clients.Parse},
		codes:   oauth.Codes{Store: p.Store, Now: now},
		refresh: oauth.Refresh{Store: p.Store, Now: now, Lifetimes: oauth.Lifetimes{Idle: cfg.RefreshIdle, Absolute: cfg.RefreshMax}},
	}
}

// Request bodies are small forms or JSON objects; 16 KiB is generous.
const maxBody = 16 << 10

// endpoints maps each path login serves, under the issuer and without a
// trailing slash, to its handler. The discovery metadata must name every
// one of them (tests hold it to that), so a new endpoint is added here.
func (s *server) endpoints() map[string]http.Handler {
	token := httpapi.OAuthHandler(s.token)
	jwks := httpapi.Handler(s.jwks)
	discovery := httpapi.Handler(s.discovery)
	return map[string]http.Handler{
		"":                       token, // the first slice's clients post to the function's root
		pathToken:                token,
		pathAuthorize:            httpapi.Handler(s.authorize),
		pathJWKS:                 jwks,
		"/.well-known/jwks.json": jwks,
		pathIntrospect:           httpapi.Handler(s.introspect),
		pathRevoke:               httpapi.OAuthHandler(s.revoke),
		pathUserinfo:             httpapi.Handler(s.userinfo),
		pathLogout:               httpapi.Handler(s.endSession),
		wellKnownOIDC:            discovery,
		wellKnownOAuth:           discovery,
	}
}

func (s *server) routes() http.Handler {
	endpoints := s.endpoints()
	notFound := httpapi.Handler(func(w http.ResponseWriter, r *http.Request) error {
		return httpapi.Errorf(http.StatusNotFound, "no such endpoint %q: see %s/.well-known/openid-configuration", r.URL.Path, s.auth.Config.Issuer)
	})
	prefix := issuerPath(s.auth.Config.Issuer)
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := endpoints[endpointPath(r.URL.Path, prefix)]; ok {
			h.ServeHTTP(w, r)
			return
		}
		notFound.ServeHTTP(w, r)
	})
	return httpapi.CORS{
		Origins:     s.cfg.CORSOrigins,
		Allow:       s.clientOrigin,
		Credentials: s.auth.Config.Cookie != "",
		Methods:     []string{http.MethodGet, http.MethodPost},
	}.Wrap(mux)
}

// issuerPath is the issuer's path ("/login" for https://host/login), ""
// when it has none.
func issuerPath(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.Path, "/")
}

// endpointPath maps a request's path to its key in endpoints. An issuer
// with a path (LOGIN_URL=https://www.impo.com.uy/login) is reached
// through a load balancer or Firebase Hosting that forwards the path as
// it is, so the endpoints answer under it; and at the bare paths too,
// for a proxy that strips it (and cmd/local, which does). RFC 8414 §3
// puts the metadata of such an issuer at the host's root with the path
// appended, which the proxy may route here as well.
func endpointPath(p, prefix string) string {
	p = strings.TrimSuffix(p, "/")
	if prefix == "" {
		return p
	}
	if rest, ok := strings.CutPrefix(p, prefix); ok && (rest == "" || rest[0] == '/') {
		return rest
	}
	if p == wellKnownOAuth+prefix {
		return wellKnownOAuth
	}
	return p
}

// The discovery documents' paths under the issuer (OpenID Connect
// Discovery §4, RFC 8414 §3; for an issuer with a path, the second also
// answers at the host's root, which cmd/local routes here).
const (
	wellKnownOIDC  = "/.well-known/openid-configuration"
	wellKnownOAuth = "/.well-known/oauth-authorization-server"
)

// jwks publishes the public keys. Caches may keep them briefly: a new key
// is added to the set before it signs (see the README on rotation).
func (s *server) jwks(w http.ResponseWriter, r *http.Request) error {
	if err := httpapi.CheckMethod(w, r, http.MethodGet, http.MethodHead); err != nil {
		return err
	}
	ks, err := s.auth.Keys.Get(r.Context())
	if err != nil {
		return unavailable("cannot read the signing keys", err)
	}
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(session.JWKSMaxAge/time.Second)))
	httpapi.WriteJSONStatus(w, "application/jwk-set+json", http.StatusOK, ks.JWKS())
	return nil
}

// unavailable maps a failure of a secret or the store to the status a
// client can act on: 503 and retry for an outage, 500 for what only an
// operator can fix (a missing or unreadable secret).
func unavailable(detail string, err error) *httpapi.Error {
	if secretsBroken(err) {
		return &httpapi.Error{Status: http.StatusInternalServerError, Detail: "login is misconfigured; see the server log", Err: err}
	}
	return &httpapi.Error{Status: http.StatusServiceUnavailable, Detail: detail, Err: err, RetryAfter: 5 * time.Second}
}

// authnError maps what the authenticator refused, other than bad
// credentials, to the client's answer.
func authnError(err error) error {
	var locked *authn.LockedError
	var down *authn.UnavailableError
	switch {
	case errors.As(err, &locked):
		return &httpapi.Error{Status: http.StatusTooManyRequests, RetryAfter: locked.RetryAfter,
			Detail: "too many failed attempts; retry later"}
	case errors.Is(err, authn.ErrBusy):
		return &httpapi.Error{Status: http.StatusServiceUnavailable, RetryAfter: time.Second,
			Detail: "too many logins at once; retry in a second", Err: err}
	case errors.As(err, &down):
		return unavailable("cannot "+down.What+" right now", err)
	}
	return err
}

func secretsBroken(err error) bool {
	return errors.Is(err, secrets.ErrNotFound) || errors.Is(err, secrets.ErrPermissionDenied) || errors.Is(err, secrets.ErrMalformed)
}
