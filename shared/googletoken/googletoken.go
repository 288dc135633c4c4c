// Package googletoken mints short-lived Google Cloud access and ID tokens
// from one of several sources, and caches them so that concurrent callers
// share one upstream call and nobody receives a token about to expire.
package googletoken

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"cloud.google.com/go/compute/metadata"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/googleapi"
)

// Kind is the kind of token asked for.
type Kind string

// The two kinds: an OAuth2 access token for Google APIs, and an OpenID
// Connect ID token for a service that checks its audience (Cloud Run,
// IAP, Cloud Functions).
const (
	Access Kind = "access"
	ID     Kind = "id"
)

// Request says which token to mint.
type Request struct {
	Kind     Kind
	Scopes   []string      // Access: sorted
	Audience string        // ID
	Lifetime time.Duration // honoured only where Lifetimes says it can be
	// Account is the service account the token is for. The impersonate
	// source needs one; a source with an identity of its own (adc, a key)
	// mints only as itself, and refuses another account with ErrIdentity.
	Account string
}

// Token is a minted token and its expiry.
type Token struct {
	Value  string
	Expiry time.Time
	// Fingerprint names the token in a log line without revealing it
	// (Fingerprint), set by Cache once per token minted.
	Fingerprint string
	// Prepared is what Cache.Prepare made of the token when it was
	// minted, nil without Prepare.
	Prepared any
}

// Fingerprint ties log lines to a token that a caller reports, without
// revealing it: the first 4 bytes of its SHA-256, in hex.
func Fingerprint(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:4])
}

// Source mints tokens upstream. It does not cache: Cache does.
type Source interface {
	// Mint asks upstream for a fresh token.
	Mint(ctx context.Context, req Request) (Token, error)
	// Lifetime says how long the tokens of kind last: fixed when the
	// upstream decides (then max is that lifetime), or up to max when the
	// source mints to order.
	Lifetime(kind Kind) (fixed bool, max time.Duration)
	// Name is the source's configuration name, for logs and errors.
	Name() string
}

// ErrUnsupported: the source cannot mint this kind of token.
var ErrUnsupported = errors.New("this token source cannot mint that kind of token")

// ErrIdentity: the source cannot mint as the account asked for (a source
// with an identity of its own asked for another; impersonation without an
// account; an account the runtime itself runs as). Only an operator can fix
// it, in the policy or the configuration.
var ErrIdentity = errors.New("this token source cannot mint as that service account")

// UpstreamError is a failure of the upstream that mints tokens. Temporary
// says whether a retry may succeed (network failure, 5xx, 429) or needs an
// operator (4xx: permission denied, bad key).
type UpstreamError struct {
	Source    string
	Status    int // upstream HTTP status; 0 when no response came
	Temporary bool
	Err       error
}

// Error implements error.
func (e *UpstreamError) Error() string {
	return fmt.Sprintf("token source %s: upstream status %d: %v", e.Source, e.Status, e.Err)
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *UpstreamError) Unwrap() error { return e.Err }

// upstream classifies err from an upstream call.
func upstream(source string, err error) error {
	if err == nil || errors.Is(err, ErrUnsupported) {
		return err
	}
	ue := &UpstreamError{Source: source, Err: err, Temporary: true}
	var re *oauth2.RetrieveError
	var ge *googleapi.Error
	var me *metadata.Error
	var ne net.Error
	switch {
	case errors.As(err, &re) && re.Response != nil:
		ue.Status = re.Response.StatusCode
	case errors.As(err, &ge):
		ue.Status = ge.Code
	case errors.As(err, &me):
		ue.Status = me.Code
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded):
		return ue
	}
	if ue.Status != 0 {
		ue.Temporary = ue.Status >= 500 || ue.Status == http.StatusTooManyRequests
	}
	return ue
}

// jwtExpiry reads the exp claim of a JWT without verifying it: the token
// came from the upstream we trust over TLS, and we only need its expiry.
func jwtExpiry(token string) (time.Time, error) {
	var c struct {
		Exp int64 `json:"exp"`
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, errors.New("read the expiry of an ID token: not a JWS in compact form")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err == nil {
		err = json.Unmarshal(payload, &c)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read the expiry of an ID token: %w", err)
	}
	if c.Exp == 0 {
		return time.Time{}, errors.New("ID token has no exp claim")
	}
	return time.Unix(c.Exp, 0), nil
}

// claims are those of the JWTs a service-account key signs: the
// JWT-bearer assertion (RFC 7523 §3) and the self-signed access token.
// aud is always present, empty in a self-signed token, as the tokens
// have always been made.
type claims struct {
	Iss   string `json:"iss"`
	Sub   string `json:"sub,omitempty"`
	Aud   string `json:"aud"`
	Scope string `json:"scope,omitempty"`
	Iat   int64  `json:"iat"`
	Exp   int64  `json:"exp"`
	// TargetAudience asks Google's token endpoint for an ID token with
	// this audience instead of an access token.
	TargetAudience string `json:"target_audience,omitempty"`
}

// ServiceAccountKey is a parsed Google service-account JSON key.
type ServiceAccountKey struct {
	JSON     []byte
	Email    string
	KeyID    string
	TokenURI string
	private  *rsa.PrivateKey
}

// ParseKey reads a service-account key ("type": "service_account").
func ParseKey(data []byte) (*ServiceAccountKey, error) {
	var f struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &f); err != nil || f.Type != "service_account" {
		return nil, errors.New(`not a service-account key: want JSON with "type": "service_account"`)
	}
	cfg, err := google.JWTConfigFromJSON(data)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(cfg.PrivateKey)
	if block == nil {
		return nil, errors.New("service-account key: private_key is not PEM")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("service-account key: private_key: %w", err)
	}
	priv, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("service-account key: private_key is not RSA")
	}
	if cfg.Email == "" || cfg.PrivateKeyID == "" {
		return nil, errors.New("service-account key: client_email and private_key_id are required")
	}
	return &ServiceAccountKey{JSON: data, Email: cfg.Email, KeyID: cfg.PrivateKeyID, TokenURI: cfg.TokenURL, private: priv}, nil
}

// sign signs c as a compact RS256 JWT whose header names the key's id
// (kid), by which Google finds the public key to check it.
func (k *ServiceAccountKey) sign(c claims) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.private, KeyID: k.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("service-account key signer: %w", err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	sig, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign with the service-account key: %w", err)
	}
	return sig.CompactSerialize()
}

// NewServiceAccountKey makes a service-account key in Google's JSON
// format with a fresh RSA key, for the local run's dev key and for tests.
// Google never sees it: only a token endpoint named by tokenURI, or a
// checker of self-signed tokens, can accept what it signs.
func NewServiceAccountKey(email, tokenURI string) ([]byte, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 20)
	rand.Read(id)
	project := email[strings.IndexByte(email, '@')+1:]
	project, _, _ = strings.Cut(project, ".")
	return json.MarshalIndent(map[string]string{
		"type":           "service_account",
		"project_id":     project,
		"private_key_id": hex.EncodeToString(id),
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   email,
		"client_id":      "0",
		"token_uri":      tokenURI,
	}, "", "  ")
}

// PublicKey returns the public half of the key, with which a checker
// verifies what the key signs.
func (k *ServiceAccountKey) PublicKey() *rsa.PublicKey { return &k.private.PublicKey }
