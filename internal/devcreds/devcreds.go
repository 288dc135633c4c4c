// Package devcreds makes the credentials a local run needs, in the
// credentials folder, so that a fresh checkout runs with no setup.
package devcreds

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/go-jose/go-jose/v4"

	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/clients"
	"impo.com.uy/copetes/backend/shared/googletoken"
	"impo.com.uy/copetes/backend/shared/password"
	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/session"
)

// DevAccount is the person account a local run creates.
const DevAccount = "dev"

// The dev client: the browser application a local run registers, whose
// example page cmd/local serves under /example/ (its own path, not a
// function's, so that no function ever serves it in production).
const (
	DevClient = "impo-web-dev"
	// DevOrigin is cmd/local's address with its defaults (LOCAL_HOST,
	// PORT); a run elsewhere registers its own with DevClientAt or
	// cmd/admin client update.
	DevOrigin = "http://127.0.0.1:8080"
)

// DevClientAt is the dev client for a local server at origin: the code
// flow with refresh, and the password grant too, so that the README's
// curl walkthrough keeps logging in with a password (production clients
// do not get it: RFC 9700 §2.4).
func DevClientAt(origin string) clients.Client {
	return clients.Client{
		ID:                     DevClient,
		Name:                   "Ejemplo local",
		Kind:                   clients.Public,
		RedirectURIs:           []string{origin + "/example/callback"},
		AllowedOrigins:         []string{origin},
		PostLogoutRedirectURIs: []string{origin + "/example/"},
		GrantTypes:             []clients.Grant{clients.AuthorizationCode, clients.RefreshToken, clients.Password},
	}
}

// devPolicy lets the dev role obtain any token: for local runs only.
const devPolicy = `{
  "roles": {
    "dev": {"scopes": ["*"], "audiences": ["*"], "max_lifetime": "1h"}
  }
}
`

// IDs names the secrets Bootstrap writes, and where the dev client runs.
type IDs struct {
	Keys, Accounts, GetTokenKey, Policy, Clients string
	// Origin is the local server's origin (scheme://host:port), which
	// the dev client's redirect URIs and allowed origins name; DevOrigin
	// when empty. cmd/local passes the address it listens on, so that a
	// fresh checkout on another port (PORT=0 in the tests) logs in too.
	Origin string
}

// Made says what Bootstrap created.
type Made struct {
	Files       []string // secret ids written
	DevPassword string   // set when the dev account was created: shown once
}

// Bootstrap creates each missing secret in dir: a signing key set (DevKeySet),
// an accounts list holding the dev account with a random password, a dev
// service-account key for gettoken's selfsigned source, and a permissive
// gettoken policy, and a clients list holding the dev client (DevClientAt
// ids.Origin). It never overwrites a file that exists.
func Bootstrap(dir string, ids IDs) (Made, error) {
	keysID, accountsID := ids.Keys, ids.Accounts
	var made Made
	d := secrets.Dir{Path: dir}
	missing := func(id string) (bool, error) {
		_, err := os.Stat(filepath.Join(dir, id))
		if errors.Is(err, fs.ErrNotExist) {
			return true, nil
		}
		return false, err
	}
	if ok, err := missing(keysID); err != nil {
		return made, err
	} else if ok {
		data, err := DevKeySet()
		if err != nil {
			return made, err
		}
		if err := d.Write(keysID, data); err != nil {
			return made, fmt.Errorf("write %s: %w", keysID, err)
		}
		made.Files = append(made.Files, keysID)
	}
	if ok, err := missing(accountsID); err != nil {
		return made, err
	} else if ok {
		pw := rand.Text() // 26 base32 characters, 130 bits
		hash, err := password.Hash([]byte(pw), password.Default)
		if err != nil {
			return made, err
		}
		data, err := accounts.Marshal([]accounts.Account{{
			Name: DevAccount, Kind: accounts.User, Hash: hash, Roles: []string{"dev", "session-admin"},
		}})
		if err != nil {
			return made, err
		}
		if err := d.Write(accountsID, data); err != nil {
			return made, fmt.Errorf("write %s: %w", accountsID, err)
		}
		made.Files = append(made.Files, accountsID)
		made.DevPassword = pw
	}
	if ok, err := missing(ids.GetTokenKey); err != nil {
		return made, err
	} else if ok {
		// A key Google has never seen: it signs self-signed tokens that
		// only local checkers accept.
		data, err := googletoken.NewServiceAccountKey("gettoken-dev@impo-local.iam.gserviceaccount.com", "https://oauth2.googleapis.com/token")
		if err != nil {
			return made, err
		}
		if err := d.Write(ids.GetTokenKey, data); err != nil {
			return made, fmt.Errorf("write %s: %w", ids.GetTokenKey, err)
		}
		made.Files = append(made.Files, ids.GetTokenKey)
	}
	if ok, err := missing(ids.Policy); err != nil {
		return made, err
	} else if ok {
		if err := d.Write(ids.Policy, []byte(devPolicy)); err != nil {
			return made, fmt.Errorf("write %s: %w", ids.Policy, err)
		}
		made.Files = append(made.Files, ids.Policy)
	}
	if ok, err := missing(ids.Clients); err != nil {
		return made, err
	} else if ok {
		origin := ids.Origin
		if origin == "" {
			origin = DevOrigin
		}
		data, err := clients.Marshal([]clients.Client{DevClientAt(origin)})
		if err != nil {
			return made, err
		}
		if err := d.Write(ids.Clients, data); err != nil {
			return made, fmt.Errorf("write %s: %w", ids.Clients, err)
		}
		made.Files = append(made.Files, ids.Clients)
	}
	return made, nil
}

// DevKeySet makes a fresh signing key set for a local run: a P-256 key
// first and then an Ed25519 key, so that both sign (session.ParseKeySet:
// a P-256 key signs only in front of the Ed25519 signer): session tokens
// stay EdDSA, and ID tokens are ES256, which go-oidc and most verifiers
// accept by default, as they will in production once an operator adds
// and promotes an ES256 key.
func DevKeySet() ([]byte, error) {
	var keys []jose.JSONWebKey
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA} {
		k, err := session.NewKeyFor(alg)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return session.MarshalKeySet(keys)
}
