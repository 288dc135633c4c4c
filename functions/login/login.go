// Package login is the session authority: it checks passwords and service
// credentials, issues session tokens, publishes its public keys, and
// introspects and revokes tokens. Entry point: Login.
package login

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/entrypoint"
	"impo.com.uy/copetes/backend/shared/httpapi"
	"impo.com.uy/copetes/backend/shared/lockout"
	"impo.com.uy/copetes/backend/shared/password"
	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/session"
)

func init() {
	entrypoint.HTTP("Login", entrypoint.Lazy("login", func(ctx context.Context) (http.Handler, error) {
		s, err := newServerFromEnv(ctx)
		if err != nil {
			return nil, err
		}
		return s.routes(), nil
	}))
}

func newServerFromEnv(ctx context.Context) (*server, error) {
	cfg, err := configFromEnv()
	if err != nil {
		return nil, err
	}
	auth, err := session.Default(ctx)
	if err != nil {
		return nil, err
	}
	return newServer(cfg, auth, time.Now), nil
}

// server holds login's parts; tests build it with newServer.
type server struct {
	cfg      config
	auth     *session.Authority
	accounts *secrets.Decoded[*accounts.List]
	guard    lockout.Guard
	limiter  *password.Limiter
	now      func() time.Time
	// matches checks a password; a field so that tests can count calls.
	matches func(context.Context, password.Hashed, []byte) (bool, error)
}

func newServer(cfg config, auth *session.Authority, now func() time.Time) *server {
	s := &server{
		cfg:      cfg,
		auth:     auth,
		accounts: &secrets.Decoded[*accounts.List]{Source: auth.Secrets, Name: cfg.AccountsSecret, Decode: accounts.Parse},
		guard:    lockout.Guard{Store: auth.Store, Now: now},
		limiter:  password.NewLimiter(cfg.HashMemoryKiB, cfg.HashWait),
		now:      now,
	}
	s.matches = s.limiter.Matches
	return s
}

// Request bodies are small forms or JSON objects; 16 KiB is generous.
const maxBody = 16 << 10

func (s *server) routes() http.Handler {
	token := httpapi.OAuthHandler(s.token)
	jwks := httpapi.Handler(s.jwks)
	introspect := httpapi.Handler(s.introspect)
	revoke := httpapi.OAuthHandler(s.revoke)
	notFound := httpapi.Handler(func(w http.ResponseWriter, r *http.Request) error {
		return httpapi.Errorf(http.StatusNotFound, "no such endpoint %q: use /token, /jwks, /introspect or /revoke", r.URL.Path)
	})
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch strings.TrimSuffix(r.URL.Path, "/") {
		case "", "/token":
			token.ServeHTTP(w, r)
		case "/jwks", "/.well-known/jwks.json":
			jwks.ServeHTTP(w, r)
		case "/introspect":
			introspect.ServeHTTP(w, r)
		case "/revoke":
			revoke.ServeHTTP(w, r)
		default:
			notFound.ServeHTTP(w, r)
		}
	})
	return httpapi.CORS{
		Origins:     s.cfg.CORSOrigins,
		Credentials: s.auth.Config.Cookie != "",
		Methods:     []string{http.MethodGet, http.MethodPost},
	}.Wrap(mux)
}

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
	w.Header().Set("Cache-Control", "public, max-age=300")
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

func secretsBroken(err error) bool {
	return errors.Is(err, secrets.ErrNotFound) || errors.Is(err, secrets.ErrPermissionDenied) || errors.Is(err, secrets.ErrMalformed)
}
