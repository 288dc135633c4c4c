package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"impo.com.uy/copetes/backend/shared/oauth"
	"impo.com.uy/copetes/backend/shared/session"
)

// idTokenClaims are an ID token's claims (OpenID Connect Core §2).
type idTokenClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"` // the client: one audience, a string
	// Expiry is the access token's: what the ID token says holds as long
	// as the session it came with.
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	AuthTime int64    `json:"auth_time"` // when the person typed the password
	Nonce    string   `json:"nonce,omitempty"`
	AMR      []string `json:"amr,omitempty"` // RFC 8176: ["pwd"]
	// SessionID names the refresh family: the end-session endpoint ends
	// it when this token comes back as id_token_hint.
	SessionID string `json:"sid,omitempty"`
	// AuthorizedParty is the client too (Core §2: the party the token was
	// issued to), which some libraries expect beside a one-element aud.
	AuthorizedParty string `json:"azp"`
}

// idTokenType is the JOSE typ of an ID token. A session verifier wants
// at+jwt, so it refuses an ID token even when one key signs both.
const idTokenType = "JWT"

// maxIDTokenHint bounds the id_token_hint read at logout: ours are under
// 1 KiB.
const maxIDTokenHint = 8 << 10

// idTokenAlg is the algorithm the key set signs ID tokens with: ES256,
// which every OpenID Connect library verifies by default, when the set
// has a P-256 key that signs; else EdDSA with the session key.
func idTokenAlg(ks *session.KeySet) jose.SignatureAlgorithm {
	if ks.SigningKeyID(jose.ES256) != "" {
		return jose.ES256
	}
	return jose.EdDSA
}

// idToken signs the ID token for authorization a, issued with the access
// token whose claims are at.
func (s *server) idToken(ctx context.Context, a oauth.Authorization, nonce string, at session.Claims) (string, error) {
	ks, err := s.auth.Keys.Get(ctx)
	if err != nil {
		return "", err
	}
	c := idTokenClaims{
		Issuer: s.auth.Config.Issuer, Subject: a.Subject, Audience: a.ClientID,
		Expiry: at.Expiry, IssuedAt: at.IssuedAt, AuthTime: a.AuthTime.Unix(),
		Nonce: nonce, AMR: a.AMR, SessionID: a.Family, AuthorizedParty: a.ClientID,
	}
	if idTokenAlg(ks) == jose.ES256 {
		return ks.SignES256(idTokenType, c)
	}
	return ks.SignEdDSA(idTokenType, c)
}

// errHint is an id_token_hint that login did not issue.
var errHint = errors.New("id_token_hint is not an ID token this login issued")

// verifyIDTokenHint checks that token is an ID token login signed (with a
// key of the current set, either algorithm) for its issuer, and returns
// its claims. Its expiry is not checked: OpenID Connect RP-Initiated
// Logout §2 lets a client log out with an ID token that has expired, as
// most will have by then. A key set that cannot be read is returned as
// such, not as errHint.
func (s *server) verifyIDTokenHint(ctx context.Context, token string) (idTokenClaims, error) {
	if len(token) > maxIDTokenHint {
		return idTokenClaims{}, fmt.Errorf("%w: longer than %d bytes", errHint, maxIDTokenHint)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		return idTokenClaims{}, fmt.Errorf("%w: %v", errHint, err)
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != idTokenType {
		return idTokenClaims{}, fmt.Errorf("%w: typ %q", errHint, typ)
	}
	ks, err := s.auth.Keys.Get(ctx)
	if err != nil {
		return idTokenClaims{}, err
	}
	// The key is chosen by kid and must be of the header's algorithm.
	var key any
	switch jose.SignatureAlgorithm(h.Algorithm) {
	case jose.ES256:
		if k, ok := ks.ES256PublicKeys()[h.KeyID]; ok {
			key = k
		}
	case jose.EdDSA:
		if k, ok := ks.PublicKeys()[h.KeyID]; ok {
			key = k
		}
	}
	if key == nil {
		return idTokenClaims{}, fmt.Errorf("%w: unknown key %q", errHint, h.KeyID)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return idTokenClaims{}, fmt.Errorf("%w: %v", errHint, err)
	}
	var c idTokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return idTokenClaims{}, fmt.Errorf("%w: claims: %v", errHint, err)
	}
	if c.Issuer != s.auth.Config.Issuer || c.Subject == "" || c.Audience == "" {
		return idTokenClaims{}, fmt.Errorf("%w: iss %q, sub or aud missing", errHint, c.Issuer)
	}
	return c, nil
}
