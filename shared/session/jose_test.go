package session

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"impo.com.uy/copetes/backend/shared/strictjson"
)

// joseVerifyFully is how Verify checked a token before it read tokens by
// hand: go-jose, encoding/json and strictjson.Check. FuzzVerify holds
// the hand-written reader to it.
func joseVerifyFully(v *Verifier, ctx context.Context, token string) (Claims, string, error) {
	header, _, ok := strings.Cut(token, ".")
	if !ok {
		return Claims{}, "", invalid("not a compact JWS")
	}
	if err := joseCheckHeader(header); err != nil {
		return Claims{}, "", err
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return Claims{}, "", invalid("%v", err)
	}
	kid := jws.Signatures[0].Protected.KeyID
	keys, err := v.Keys(ctx)
	if err != nil {
		return Claims{}, "", fmt.Errorf("session verification keys: %w", err)
	}
	pub, ok := keys[kid]
	if !ok {
		return Claims{}, "", invalid("unknown key id %q", kid)
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return Claims{}, "", invalid("bad signature")
	}
	c, err := joseCheckClaims(v, payload)
	return c, kid, err
}

func joseCheckHeader(segment string) error {
	raw, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		return invalid("header is not base64url")
	}
	var h map[string]json.RawMessage
	if err := strictjson.Check(raw); err != nil {
		return invalid("header: %v", err)
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return invalid("header is not a JSON object")
	}
	for name := range h {
		if !slices.Contains([]string{"alg", "kid", "typ"}, name) {
			return invalid("header parameter %q is not accepted", name)
		}
	}
	var typ string
	json.Unmarshal(h["typ"], &typ)
	if !strings.EqualFold(typ, TokenType) && !strings.EqualFold(typ, "application/"+TokenType) {
		return invalid("typ is %q, want %q", typ, TokenType)
	}
	return nil
}

// wireClaims accepts "aud" as a string or an array (RFC 7519 §4.1.3).
type joseWireClaims struct {
	Claims
	Audience  json.RawMessage `json:"aud"`
	NotBefore *int64          `json:"nbf"`
}

func joseCheckClaims(v *Verifier, payload []byte) (Claims, error) {
	if err := strictjson.Check(payload); err != nil {
		return Claims{}, invalid("claims: %v", err)
	}
	var w joseWireClaims
	if err := json.Unmarshal(payload, &w); err != nil {
		return Claims{}, invalid("claims: %v", err)
	}
	c := w.Claims
	var auds []string
	if err := json.Unmarshal(w.Audience, &c.Audience); err == nil {
		auds = []string{c.Audience}
	} else if err := json.Unmarshal(w.Audience, &auds); err != nil {
		return Claims{}, invalid("aud is neither a string nor an array of strings")
	}
	var nbf int64
	if w.NotBefore != nil {
		nbf = *w.NotBefore
	}
	if err := v.checkRules(c, slices.Contains(auds, v.Audience), nbf); err != nil {
		return Claims{}, err
	}
	c.Audience = v.Audience
	return c, nil
}
