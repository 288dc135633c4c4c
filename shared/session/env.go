package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"impo.com.uy/copetes/backend/shared/env"
	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/store"
)

// Config is the session configuration every function shares.
type Config struct {
	// Issuer (LOGIN_ISSUER) is login's URL: the iss of every token, what
	// every verifier expects, and the base of login's endpoints
	// (<Issuer>/token, <Issuer>/jwks, ...). See CheckIssuer and LocalIssuer.
	Issuer     string
	Audience   string        // SESSION_AUDIENCE
	TTL        time.Duration // SESSION_TTL, at most 12h
	Leeway     time.Duration // SESSION_LEEWAY, at most 60s
	KeysSecret string        // SESSION_KEYS_SECRET
	Cookie     string        // SESSION_COOKIE: cookie name, "" for none
	// RevocationCache is how long "not revoked" is remembered per process
	// (REVOCATION_CACHE_TTL; 10s with Firestore, 0 in memory).
	RevocationCache time.Duration
	// JWKSURL, when set (SESSION_JWKS_URL), is where verifiers get the
	// public keys (login's /jwks), instead of the signing-key secret.
	JWKSURL string
	JWKSTTL time.Duration // SESSION_JWKS_TTL
}

// DefaultKeysSecret is the id of the signing-key secret.
const DefaultKeysSecret = "session-keys"

// KeysSecretFromEnv names the signing-key secret: SESSION_KEYS_SECRET, or
// DefaultKeysSecret. login, cmd/local and cmd/admin all ask here.
func KeysSecretFromEnv() string { return env.String("SESSION_KEYS_SECRET", DefaultKeysSecret) }

// ConfigFromEnv reads Config from the environment. sharedStore says that
// revocations live in a store every instance sees, where a per-process
// "not revoked" cache is worth bounding (see REVOCATION_CACHE_TTL).
func ConfigFromEnv(sharedStore bool) (Config, error) {
	iss, err := issuerFromEnv(env.Deployed())
	if err != nil {
		return Config{}, err
	}
	c := Config{
		Issuer:     iss,
		Audience:   env.String("SESSION_AUDIENCE", "impo-copetes-backend"),
		KeysSecret: KeysSecretFromEnv(),
		Cookie:     env.String("SESSION_COOKIE", ""),
	}
	if c.TTL, err = env.Duration("SESSION_TTL", time.Hour, time.Minute, MaxLifetime); err != nil {
		return c, err
	}
	if c.Leeway, err = env.Duration("SESSION_LEEWAY", 30*time.Second, 0, MaxLeeway); err != nil {
		return c, err
	}
	def := time.Duration(0) // one process: nothing to wait for
	if sharedStore {
		def = 10 * time.Second
	}
	if c.RevocationCache, err = env.Duration("REVOCATION_CACHE_TTL", def, 0, 5*time.Minute); err != nil {
		return c, err
	}
	if c.JWKSURL = env.String("SESSION_JWKS_URL", ""); c.JWKSURL != "" {
		if err := CheckJWKSURL(c.JWKSURL); err != nil {
			return c, &env.Error{Var: "SESSION_JWKS_URL", Want: err.Error()}
		}
	}
	if c.JWKSTTL, err = env.Duration("SESSION_JWKS_TTL", 5*time.Minute, time.Second, time.Hour); err != nil {
		return c, err
	}
	return c, nil
}

// LocalIssuer is the issuer of a local run that names none: login as
// cmd/local serves it, under /Login on its default port. cmd/local sets
// LOGIN_ISSUER to its own address when it listens elsewhere.
const LocalIssuer = "http://127.0.0.1:8080/Login"

// issuerFromEnv reads LOGIN_ISSUER. Deployed, it must be set: a default
// would be some other server's URL, and tokens would name an issuer that
// no client can reach. SESSION_ISSUER, which named the issuer before it
// was a URL, stops the process rather than being ignored: a function left
// with it would expect tokens that login no longer issues.
func issuerFromEnv(deployed bool) (string, error) {
	if env.String("SESSION_ISSUER", "") != "" {
		return "", &env.Error{Var: "SESSION_ISSUER", Want: "no longer read: the issuer is now login's URL, LOGIN_ISSUER (deploy.sh sets it); remove SESSION_ISSUER"}
	}
	iss := env.String("LOGIN_ISSUER", "")
	switch {
	case iss == "" && deployed:
		return "", &env.Error{Var: "LOGIN_ISSUER", Want: "set it to login's https URL, such as https://login-PROJECT_NUMBER.REGION.run.app (deploy.sh does): tokens carry it as iss and login's endpoints live under it"}
	case iss == "":
		return LocalIssuer, nil
	}
	if err := CheckIssuer(iss); err != nil {
		return "", &env.Error{Var: "LOGIN_ISSUER", Want: err.Error()}
	}
	if u, _ := url.Parse(iss); deployed && u.Scheme == "http" {
		return "", &env.Error{Var: "LOGIN_ISSUER", Want: "want https: a deployed function is never reached on a loopback address"}
	}
	return iss, nil
}

// MaxIssuer bounds the issuer's length: it travels in every token.
const MaxIssuer = 256

// CheckIssuer reports whether s may be login's issuer (RFC 8414 §2, OpenID
// Connect Discovery §3): an https URL with no query, fragment or user
// information, or plain http to a loopback host (127.0.0.1, [::1],
// localhost) for local runs; with no trailing slash, so that endpoints are
// s + "/token" and so on; and written as a browser writes it back
// (lower-case scheme and host, no default port, nothing escaped
// differently), because clients compare the issuer as a string. Its
// errors do not repeat s.
func CheckIssuer(s string) error {
	if len(s) > MaxIssuer {
		return fmt.Errorf("want at most %d bytes", MaxIssuer)
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return errors.New("want an absolute URL, https://host[/path]")
	}
	switch {
	case u.User != nil:
		return errors.New("want no user information (user@)")
	case u.RawQuery != "" || u.ForceQuery || strings.Contains(s, "?"):
		return errors.New("want no query (?): RFC 8414 §2")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return errors.New("want no fragment (#): RFC 8414 §2")
	case u.Scheme == "http" && !loopback(u.Hostname()):
		return errors.New("want https (plain http only for loopback hosts: 127.0.0.1, [::1], localhost)")
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("want https (or http for loopback hosts)")
	case strings.HasSuffix(u.Path, "/"):
		return errors.New("want no trailing slash: endpoints are the issuer followed by /token, /jwks and so on")
	case u.Path != "" && path.Clean(u.Path) != u.Path:
		return errors.New("want a clean path (no //, . or .. segments)")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		switch {
		case err != nil || n < 1 || n > 65535 || p[0] == '0':
			return errors.New("want a port from 1 to 65535")
		case u.Scheme == "https" && n == 443 || u.Scheme == "http" && n == 80:
			return errors.New("want no default port (:443, :80): clients compare the issuer as written")
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return errors.New("want no empty port")
	}
	if u.String() != s || strings.ToLower(u.Host) != u.Host {
		return errors.New("want the URL as a browser writes it: lower-case scheme and host, path escaped (clients compare the issuer as a string)")
	}
	return nil
}

// loopback reports whether host (no port, no brackets) is the machine
// itself, the one place plain http carries no risk (RFC 8252 §8.3).
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback))
}

// Authority bundles what functions need to issue, verify and revoke
// session tokens in one process.
type Authority struct {
	Config      Config
	Keys        *secrets.Decoded[*KeySet]
	Issuer      *Issuer
	Verifier    *Verifier
	Revocations Revocations
}

// NewAuthority wires an Authority: the signing keys come from src, the
// revocations live in st.
func NewAuthority(cfg Config, src secrets.Source, st store.Store, now func() time.Time) *Authority {
	keys := &secrets.Decoded[*KeySet]{Source: src, Name: cfg.KeysSecret, Decode: ParseKeySet}
	rev := NewRevocations(st, cfg.RevocationCache, now)
	return &Authority{
		Config:      cfg,
		Keys:        keys,
		Revocations: rev,
		Issuer: &Issuer{
			Keys: keys.Get, Issuer: cfg.Issuer, Audience: cfg.Audience, TTL: cfg.TTL, Now: now,
		},
		Verifier: &Verifier{
			Keys:   verificationKeys(cfg, keys),
			Issuer: cfg.Issuer, Audience: cfg.Audience, Leeway: cfg.Leeway, Revocations: rev, Now: now,
		},
	}
}

// FromEnv reads the session configuration and wires the session
// authority (login) over the process's secrets and the revocations' store.
func FromEnv(src secrets.Source, revocations store.Store, sharedStore bool) (*Authority, error) {
	cfg, err := ConfigFromEnv(sharedStore)
	if err != nil {
		return nil, err
	}
	return NewAuthority(cfg, src, revocations, time.Now), nil
}

// VerifierFromEnv wires an Authority for a function that only verifies
// sessions (gettoken, validate). Deployed, it must read login's published
// JWKS: a verifier that held the signing keys would hand them to whoever
// controls it (and, through gettoken, to any role allowed to read
// secrets), so it refuses to start without SESSION_JWKS_URL.
func VerifierFromEnv(src secrets.Source, revocations store.Store, sharedStore bool) (*Authority, error) {
	cfg, err := ConfigFromEnv(sharedStore)
	if err != nil {
		return nil, err
	}
	if err := checkVerifierOnly(cfg, env.Deployed()); err != nil {
		return nil, err
	}
	return NewAuthority(cfg, src, revocations, time.Now), nil
}

func checkVerifierOnly(cfg Config, deployed bool) error {
	if deployed && cfg.JWKSURL == "" {
		return &env.Error{Var: "SESSION_JWKS_URL", Want: "set it to login's /jwks: a deployed verifier reads the public keys, never the signing-key secret " + cfg.KeysSecret}
	}
	return nil
}

// verificationKeys reads the public keys from the published JWKS when
// SESSION_JWKS_URL is set, else from the signing-key secret.
func verificationKeys(cfg Config, keys *secrets.Decoded[*KeySet]) func(context.Context) (PublicKeys, error) {
	if cfg.JWKSURL != "" {
		return jwksKeys(cfg.JWKSURL, cfg.JWKSTTL, time.Hour)
	}
	return func(ctx context.Context) (PublicKeys, error) {
		ks, err := keys.Get(ctx)
		if err != nil {
			return nil, err
		}
		return ks.PublicKeys(), nil
	}
}
