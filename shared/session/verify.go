package session

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"impo.com.uy/copetes/backend/shared/strictjson"
)

// Verifier checks session tokens. It is the one implementation every
// function uses.
type Verifier struct {
	Keys        func(context.Context) (PublicKeys, error)
	Issuer      string
	Audience    string
	Leeway      time.Duration // at most MaxLeeway
	Revocations Revocations
	Now         func() time.Time

	// seen remembers tokens whose signature and claims already checked
	// out, so that a caller presenting the same token again skips the
	// signature (most of a verification's cost). Expiry, the signing key's
	// presence in the current set, and revocation are checked every time.
	seen seenTokens
}

// seenTokens is a bounded map from a token to its checked claims. It is
// read on every request and written once per token, so it is a sync.Map:
// a read takes no lock. The token itself is the key, compared whole: no
// digest to compute per request, and no two tokens can share an entry.
type seenTokens struct {
	m sync.Map // string -> *seenToken
	n atomic.Int64
}

// seenToken is what a verification established about a token, and what
// its later ones need.
type seenToken struct {
	claims Claims
	kid    string
	// revocation are the store keys that may refuse the token (Refused),
	// derived once from its jti and subject.
	revocation []string
}

// maxSeen bounds the memory the map takes (about 1.5 KiB an entry: the
// token, its claims and its revocation keys).
const maxSeen = 10000

func (s *seenTokens) get(token string) (*seenToken, bool) {
	e, ok := s.m.Load(token)
	if !ok {
		return nil, false
	}
	return e.(*seenToken), true
}

func (s *seenTokens) put(token string, e *seenToken, now time.Time) {
	if s.n.Load() >= maxSeen {
		s.m.Range(func(k, v any) bool {
			if !now.Before(v.(*seenToken).claims.ExpiresAt().Add(MaxLeeway)) {
				s.drop(k.(string))
			}
			return true
		})
		if s.n.Load() >= maxSeen {
			s.m.Range(func(k, _ any) bool {
				s.drop(k.(string))
				return true
			})
		}
	}
	// A copy: token may be part of a request's header, which the map
	// need not keep alive.
	if _, loaded := s.m.LoadOrStore(strings.Clone(token), e); !loaded {
		s.n.Add(1)
	}
}

func (s *seenTokens) drop(token string) {
	if _, ok := s.m.LoadAndDelete(token); ok {
		s.n.Add(-1)
	}
}

// Verify checks token and returns its claims: EdDSA only, a known kid,
// typ at+jwt, exact iss and aud, exp required, iat not in the future,
// exp at most MaxLifetime after iat, bounded size, not revoked.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	if len(token) > MaxTokenSize {
		return Claims{}, invalid("longer than %d bytes", MaxTokenSize)
	}
	if seen, ok := v.seen.get(token); ok {
		return v.recheck(ctx, seen)
	}
	c, kid, err := v.verifyFully(ctx, token)
	if err != nil {
		return Claims{}, err
	}
	e := &seenToken{claims: c, kid: kid, revocation: revocationKeys(c)}
	v.seen.put(token, e, v.Now())
	return v.checkRevoked(ctx, e)
}

// recheck is Verify for a token whose signature and claims checked out
// before: what may have changed since is checked again.
func (v *Verifier) recheck(ctx context.Context, seen *seenToken) (Claims, error) {
	keys, err := v.Keys(ctx)
	if err != nil {
		return Claims{}, fmt.Errorf("session verification keys: %w", err)
	}
	if _, ok := keys[seen.kid]; !ok {
		return Claims{}, invalid("unknown key id %q", seen.kid)
	}
	c := seen.claims
	if !v.Now().Before(c.ExpiresAt().Add(min(v.Leeway, MaxLeeway))) {
		return Claims{}, invalid("expired at %s", c.ExpiresAt().UTC().Format(time.RFC3339))
	}
	return v.checkRevoked(ctx, seen)
}

// checkRevoked refuses a token revoked by its id or its session (sid), or
// issued before its subject's sessions were ended (one store read for
// all).
func (v *Verifier) checkRevoked(ctx context.Context, seen *seenToken) (Claims, error) {
	why, err := v.Revocations.refused(ctx, seen.claims, seen.revocation)
	if err != nil {
		return Claims{}, err
	}
	if why != "" {
		return Claims{}, invalid("%s", why)
	}
	return seen.claims, nil
}

// jwsBuffers hold a token's bytes and its decoded parts while it is
// verified, so that a verification allocates only what it returns.
var jwsBuffers = sync.Pool{New: func() any { return new([2 * MaxTokenSize]byte) }}

// verifyFully checks the header, the signature and the claims, in that
// order, and returns the kid that signed.
//
// It reads the token by hand rather than through go-jose: one pass over
// each part, no reflection, and nothing accepted that this file does not
// name. FuzzVerify holds it to what the go-jose path accepted.
func (v *Verifier) verifyFully(ctx context.Context, token string) (Claims, string, error) {
	buf := jwsBuffers.Get().(*[2 * MaxTokenSize]byte)
	defer jwsBuffers.Put(buf)
	jws, err := parseCompact(token, buf[:])
	if err != nil {
		return Claims{}, "", err
	}
	kid, err := checkHeader(jws.header)
	if err != nil {
		return Claims{}, "", err
	}
	keys, err := v.Keys(ctx)
	if err != nil {
		return Claims{}, "", fmt.Errorf("session verification keys: %w", err)
	}
	pub, ok := keys[kid]
	if !ok {
		return Claims{}, "", invalid("unknown key id %q", kid)
	}
	// RFC 7515 §5.2: the signature is over the header and payload
	// segments as sent, dot included.
	if !ed25519.Verify(pub, jws.signingInput, jws.signature) {
		return Claims{}, "", invalid("bad signature")
	}
	c, err := v.checkClaims(jws.payload)
	return c, kid, err
}

// compactJWS is a JWS in compact serialization, split and decoded.
type compactJWS struct {
	signingInput []byte // the header and payload segments, as sent
	header       []byte
	payload      []byte
	signature    []byte
}

// b64url is base64url without padding (RFC 7515 §2) in its one canonical
// spelling: a token has one text, so a token seen is a token verified.
var b64url = base64.RawURLEncoding.Strict()

// parseCompact splits token (RFC 7515 §7.1: three base64url segments
// separated by dots) and decodes its parts into buf, which holds twice
// MaxTokenSize bytes.
func parseCompact(token string, buf []byte) (compactJWS, error) {
	raw := buf[:copy(buf, token)]
	first := bytes.IndexByte(raw, '.')
	second := bytes.LastIndexByte(raw, '.')
	if first < 0 || second == first || bytes.IndexByte(raw[first+1:second], '.') >= 0 {
		return compactJWS{}, invalid("not a compact JWS")
	}
	// The base64 decoder skips line breaks; a token has none.
	if bytes.ContainsAny(raw, "\r\n") {
		return compactJWS{}, invalid("not a compact JWS")
	}
	jws := compactJWS{signingInput: raw[:second]}
	out := buf[len(raw):len(raw)]
	var err error
	if out, err = b64url.AppendDecode(out, raw[:first]); err != nil {
		return compactJWS{}, invalid("header is not base64url")
	}
	jws.header = out[:len(out):len(out)]
	if out, err = b64url.AppendDecode(out[len(out):], raw[first+1:second]); err != nil {
		return compactJWS{}, invalid("payload is not base64url")
	}
	jws.payload = out[:len(out):len(out)]
	if out, err = b64url.AppendDecode(out[len(out):], raw[second+1:]); err != nil || len(out) != ed25519.SignatureSize {
		return compactJWS{}, invalid("signature is not %d bytes of base64url", ed25519.SignatureSize)
	}
	jws.signature = out
	return jws, nil
}

// checkHeader reads the protected header and returns its kid. It accepts
// "alg" EdDSA, "typ" at+jwt (RFC 9068 §2.1; media types are compared
// without case, and may carry their "application/" prefix), "kid", and
// nothing else: in particular neither a key chosen by the token itself
// ("jwk", "jku", "x5u", "x5c") nor "crit". Each at most once.
func checkHeader(header []byte) (string, error) {
	var kid string
	var alg, typ bool
	err := strictjson.Object(header, func(name []byte, v strictjson.Value) error {
		switch string(name) {
		case "alg":
			if !v.Equal("EdDSA") {
				return invalid("alg is %s, want EdDSA", shortText(v))
			}
			alg = true
		case "kid":
			s, ok := v.String()
			if !ok {
				return invalid("kid is a JSON %s, want a string", v.Type())
			}
			kid = s
		case "typ":
			s, _ := v.String()
			if !strings.EqualFold(s, TokenType) && !strings.EqualFold(s, "application/"+TokenType) {
				return invalid("typ is %s, want %q", shortText(v), TokenType)
			}
			typ = true
		default:
			return invalid("header parameter %q is not accepted", strictjson.Shorten(string(name)))
		}
		return nil
	})
	switch {
	case errors.Is(err, ErrInvalid):
		return "", err
	case err != nil:
		return "", invalid("header: %v", err)
	case !alg:
		return "", invalid("alg is missing, want EdDSA")
	case !typ:
		return "", invalid("typ is missing, want %q", TokenType)
	}
	return kid, nil
}

// shortText is a value's text for a message, cut short.
func shortText(v strictjson.Value) string { return strictjson.Shorten(string(v.Text())) }

// claimNames are the claims checkClaims reads.
var claimNames = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "kind", "roles", "sid"}

// checkClaims reads the claims and checks them against the verifier's
// issuer, audience and clock.
//
// A claim set to null counts as absent, as encoding/json reads it. A
// claim name that differs from one of claimNames only in case is
// refused: claim names are case-sensitive (RFC 7519 §4), but
// encoding/json matches them without case, so such a token would say
// one thing to this verifier and another to a Go program that decodes
// its claims.
func (v *Verifier) checkClaims(payload []byte) (Claims, error) {
	var c Claims
	var nbf int64
	var audFound, audMatch bool
	err := strictjson.Object(payload, func(name []byte, val strictjson.Value) error {
		if val.IsNull() {
			return checkClaimName(name)
		}
		ok := true
		switch string(name) {
		case "iss":
			c.Issuer, ok = val.String()
		case "sub":
			c.Subject, ok = val.String()
		case "aud": // a string or an array of strings (RFC 7519 §4.1.3)
			var auds []string
			if auds, ok = val.Strings(); ok {
				audMatch = slices.Contains(auds, v.Audience)
			} else {
				_, ok = val.String()
				audMatch = ok && val.Equal(v.Audience)
			}
			audFound = ok
			if !ok {
				return invalid("aud is neither a string nor an array of strings")
			}
		case "exp":
			c.Expiry, ok = val.Int64()
		case "iat":
			c.IssuedAt, ok = val.Int64()
		case "nbf":
			nbf, ok = val.Int64()
		case "jti":
			c.ID, ok = val.String()
		case "client_id":
			c.ClientID, ok = val.String()
		case "kind":
			c.Kind, ok = val.String()
		case "roles":
			c.Roles, ok = val.Strings()
		case "sid":
			c.SessionID, ok = val.String()
		default:
			return checkClaimName(name)
		}
		if !ok {
			return invalid("claim %q is a JSON %s of the wrong form", name, val.Type())
		}
		return nil
	})
	switch {
	case errors.Is(err, ErrInvalid):
		return Claims{}, err
	case err != nil:
		return Claims{}, invalid("claims: %v", err)
	case !audFound:
		return Claims{}, invalid("aud is neither a string nor an array of strings")
	}
	if err := v.checkRules(c, audMatch, nbf); err != nil {
		return Claims{}, err
	}
	c.Audience = v.Audience
	return c, nil
}

// checkRules applies the rules every session token's claims must meet,
// once they are read: issuer, audience (audMatch), lifetime within
// MaxLifetime, times against the clock with the leeway, nbf when not 0,
// subject and id.
func (v *Verifier) checkRules(c Claims, audMatch bool, nbf int64) error {
	now := v.Now()
	leeway := min(v.Leeway, MaxLeeway)
	switch {
	case c.Issuer != v.Issuer:
		return invalid("iss is %q, want %q", c.Issuer, v.Issuer)
	case !audMatch:
		return invalid("aud does not include %q", v.Audience)
	case c.Expiry == 0:
		return invalid("exp is missing")
	case !now.Before(time.Unix(c.Expiry, 0).Add(leeway)):
		return invalid("expired at %s", time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339))
	case c.IssuedAt <= 0:
		return invalid("iat is missing or before 1970")
	case time.Unix(c.IssuedAt, 0).After(now.Add(leeway)):
		return invalid("issued in the future")
	// exp and iat are both positive here (a negative exp has expired), so
	// the difference cannot overflow.
	case c.Expiry-c.IssuedAt > int64(MaxLifetime/time.Second):
		return invalid("exp is %ds after iat, more than the %s a session may live", c.Expiry-c.IssuedAt, MaxLifetime)
	case nbf != 0 && time.Unix(nbf, 0).After(now.Add(leeway)):
		return invalid("not valid before %s", time.Unix(nbf, 0).UTC().Format(time.RFC3339))
	case c.Subject == "" || c.ID == "":
		return invalid("sub or jti is missing")
	}
	return nil
}

// checkClaimName refuses a claim name that is not one of claimNames but
// matches one without case (see checkClaims). A name that folds to one of
// them is at most three times as long: "K" (U+212A, Kelvin) folds to
// "k" in three bytes.
func checkClaimName(name []byte) error {
	for _, known := range claimNames {
		if len(name) <= 3*len(known) && string(name) != known && strings.EqualFold(string(name), known) {
			return invalid("claim %q differs from %q only in case", name, known)
		}
	}
	return nil
}
