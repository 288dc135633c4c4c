package session

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// signRaw signs a header and claims given as JSON text, byte for byte.
func signRaw(header, claims string, priv ed25519.PrivateKey) string {
	input := b64(header) + "." + b64(claims)
	return input + "." + b64(ed25519.Sign(priv, []byte(input)))
}

// The hand-written reader of compact tokens: what it must accept and
// refuse beyond TestVerify_RejectsForgedAndMalformedTokens, each case
// a way a reader of JWS text can be lenient or strict in the wrong place.
func TestVerify_ReadsTokensStrictly(t *testing.T) {
	f := newFixture(t)
	exp, iat := t0.Add(time.Hour).Unix(), t0.Unix()
	claims := func(extra string) string {
		return `{"iss":"https://login.test","sub":"ana","aud":"backend","exp":` + itoa(exp) + `,"iat":` + itoa(iat) + `,"jti":"abc123","roles":["editor"]` + extra + `}`
	}
	header := `{"alg":"EdDSA","kid":"` + f.kid + `","typ":"at+jwt"}`
	good := signRaw(header, claims(""), f.priv)
	input, sig, _ := strings.Cut(good[strings.Index(good, ".")+1:], ".")
	input = good[:strings.Index(good, ".")+1] + input
	rawSig, _ := base64.RawURLEncoding.DecodeString(sig)
	// The last character of a 64-byte signature carries 4 unused bits:
	// setting one spells the same bytes another way.
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", sig[len(sig)-1])
	nonCanonical := input + "." + sig[:len(sig)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last^1])

	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"the token as login signs it", good, true},
		{"typ as a media type", signRaw(`{"alg":"EdDSA","kid":"`+f.kid+`","typ":"application/AT+JWT"}`, claims(""), f.priv), true},
		{"an escaped header name", signRaw(`{"\u0061lg":"EdDSA","kid":"`+f.kid+`","typ":"at+jwt"}`, claims(""), f.priv), true},
		{"aud as an array that names us", signRaw(header, strings.Replace(claims(""), `"aud":"backend"`, `"aud":["other","backend"]`, 1), f.priv), true},
		{"nbf null", signRaw(header, claims(`,"nbf":null`), f.priv), true},
		{"nbf in the past", signRaw(header, claims(`,"nbf":`+itoa(iat)), f.priv), true},
		{"an unknown claim, nested", signRaw(header, claims(`,"ext":{"a":[1,{"b":null}]}`), f.priv), true},

		{"padded header", strings.Replace(good, ".", "=.", 1), false},
		{"signature spelled another way", nonCanonical, false},
		{"line break in the signature", input + "." + sig[:10] + "\n" + sig[10:], false},
		{"four segments", good + ".e30", false},
		{"two segments", input, false},
		{"signature of 63 bytes", input + "." + base64.RawURLEncoding.EncodeToString(rawSig[:63]), false},
		{"no alg", signRaw(`{"kid":"`+f.kid+`","typ":"at+jwt"}`, claims(""), f.priv), false},
		{"alg in other case", signRaw(`{"alg":"eddsa","kid":"`+f.kid+`","typ":"at+jwt"}`, claims(""), f.priv), false},
		{"kid a number", signRaw(`{"alg":"EdDSA","kid":1,"typ":"at+jwt"}`, claims(""), f.priv), false},
		{"typ an array", signRaw(`{"alg":"EdDSA","kid":"`+f.kid+`","typ":["at+jwt"]}`, claims(""), f.priv), false},
		{"duplicate header", signRaw(`{"alg":"EdDSA","alg":"EdDSA","kid":"`+f.kid+`","typ":"at+jwt"}`, claims(""), f.priv), false},
		{"header not an object", signRaw(`["EdDSA"]`, claims(""), f.priv), false},
		{"claims not an object", signRaw(header, `["ana"]`, f.priv), false},
		{"claims with trailing data", signRaw(header, claims("")+" {}", f.priv), false},
		{"claims not UTF-8", signRaw(header, claims(`,"x":"`+"\xff"+`"`), f.priv), false},
		{"a claim name in other case", signRaw(header, claims(`,"ISS":"https://evil.example"`), f.priv), false},
		{"a claim name folding through Kelvin", signRaw(header, strings.Replace(claims(""), `"roles"`, `"\u212Aind":"user","roles"`, 1), f.priv), false},
		{"exp with a fraction", signRaw(header, strings.Replace(claims(""), `"exp":`+itoa(exp), `"exp":`+itoa(exp)+`.0`, 1), f.priv), false},
		{"exp a string", signRaw(header, strings.Replace(claims(""), `"exp":`+itoa(exp), `"exp":"`+itoa(exp)+`"`, 1), f.priv), false},
		{"exp null", signRaw(header, strings.Replace(claims(""), `"exp":`+itoa(exp), `"exp":null`, 1), f.priv), false},
		{"no aud", signRaw(header, strings.Replace(claims(""), `"aud":"backend",`, ``, 1), f.priv), false},
		{"aud an object", signRaw(header, strings.Replace(claims(""), `"aud":"backend"`, `"aud":{"backend":true}`, 1), f.priv), false},
		{"a role null", signRaw(header, strings.Replace(claims(""), `["editor"]`, `["editor",null]`, 1), f.priv), false},
		{"a role a number", signRaw(header, strings.Replace(claims(""), `["editor"]`, `["editor",1]`, 1), f.priv), false},
		{"a duplicate key nested in an unknown claim", signRaw(header, claims(`,"ext":{"a":1,"a":2}`), f.priv), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.verifier.Verify(context.Background(), tt.token)
			if tt.ok && err != nil {
				t.Fatalf("Verify = %v, want the token accepted", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify = %v, want ErrInvalid", err)
			}
		})
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// A token seen once is remembered as that exact text: the same token
// again skips the signature, and no other text shares its entry.
func TestVerify_SeenIsTheExactToken(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	token, _, _ := f.issuer.Issue(ctx, "ana", "user", nil)
	if _, err := f.verifier.Verify(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.verifier.seen.get(token); !ok {
		t.Fatal("a verified token is not remembered")
	}
	// The same text in a buffer of its own finds the entry.
	if _, ok := f.verifier.seen.get(string([]byte(token))); !ok {
		t.Fatal("the same token, another string, is not found")
	}
	for _, other := range []string{token + "A", token[:len(token)-1], strings.ToUpper(token)} {
		if _, ok := f.verifier.seen.get(other); ok {
			t.Fatalf("%q shares the entry of another token", other)
		}
	}
}

// The seen tokens stay within maxSeen: expired ones go first.
func TestVerify_SeenTokensAreBounded(t *testing.T) {
	var s seenTokens
	now := t0
	expired := &seenToken{claims: Claims{Expiry: now.Add(-time.Hour).Unix()}}
	live := &seenToken{claims: Claims{Expiry: now.Add(time.Hour).Unix()}}
	for i := range maxSeen - 1 {
		s.put("expired"+itoa(int64(i)), expired, now)
	}
	s.put("live", live, now)
	s.put("new", live, now) // the map is full: the expired go
	if n := s.n.Load(); n != 2 {
		t.Fatalf("%d entries after the sweep, want the 2 live ones", n)
	}
	if _, ok := s.get("live"); !ok {
		t.Fatal("a live entry was dropped while expired ones were there to drop")
	}
}

// FuzzVerify holds the hand-written reader to the go-jose path it
// replaced (joseVerifyFully), on tokens signed with a known key whose
// header and claims are any bytes: what it accepts, the old path accepted
// too, with the same claims; what it refuses that the old path accepted
// is one of the two stricter rules (a claim name that differs from ours
// only in case; null inside an array of strings).
func FuzzVerify(f *testing.F) {
	fx := newFixture(&testing.T{})
	header, _ := json.Marshal(fx.header())
	claims, _ := json.Marshal(fx.claims())
	f.Add(header, claims)
	f.Add(header, []byte(`{"iss":"https://login.test","sub":"ana","aud":["x","backend"],"exp":1795000000,"iat":1795000000,"jti":"j","nbf":null}`))
	f.Add([]byte(`{"alg":"EdDSA","kid":"`+fx.kid+`","typ":"application/at+jwt"}`), []byte(`{"ISS":"x"}`))
	f.Add([]byte(`{"alg":"EdDSA","kid":"`+fx.kid+`","typ":"at+jwt","crit":["exp"]}`), claims)
	f.Fuzz(func(t *testing.T, header, claims []byte) {
		token := signRaw(string(header), string(claims), fx.priv)
		if len(token) > MaxTokenSize {
			return
		}
		ctx := context.Background()
		got, kid, err := fx.verifier.verifyFully(ctx, token)
		want, wantKid, wantErr := joseVerifyFully(fx.verifier, ctx, token)
		switch {
		case err == nil && wantErr != nil:
			t.Fatalf("header %s claims %s: accepted; the go-jose path refused it: %v", header, claims, wantErr)
		case err == nil:
			if diff := cmp.Diff(want, got); diff != "" || kid != wantKid {
				t.Fatalf("header %s claims %s: claims (-go-jose +now):\n%s kid %q, go-jose %q", header, claims, diff, kid, wantKid)
			}
		case !errors.Is(err, ErrInvalid):
			t.Fatalf("Verify error %v is not ErrInvalid", err)
		case wantErr == nil && !strings.Contains(err.Error(), "only in case") && !bytes.Contains(claims, []byte("null")):
			t.Fatalf("header %s claims %s: refused (%v); the go-jose path accepted it", header, claims, err)
		}
	})
}
