package password

import (
	"errors"
	"strings"
	"testing"
)

func TestHashSecret_ThenMatch(t *testing.T) {
	const secret = "k3Vh0l1yIRRl5YkP1n2QJt8b0mQ9f3w6cZ2VdXy4uA7sE1rT5gH8jK0lM3nB6pO9"
	s := HashSecret([]byte(secret))
	if !strings.HasPrefix(s, "$sha256$v=1$") || strings.Count(s, "$") != 4 {
		t.Fatalf("HashSecret = %q, want $sha256$v=1$<salt>$<digest>", s)
	}
	h, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Fast() || h.Params != (Params{}) {
		t.Errorf("Parse(%q) = fast %v, params %+v; want a digest without argon2id parameters", s, h.Fast(), h.Params)
	}
	if !h.Matches([]byte(secret)) {
		t.Error("the right secret does not match")
	}
	for _, wrong := range []string{"", secret[:63], secret + "x", strings.ToUpper(secret)} {
		if h.Matches([]byte(wrong)) {
			t.Errorf("a wrong secret (%d bytes) matches", len(wrong))
		}
	}
	if HashSecret([]byte(secret)) == s {
		t.Error("two digests of one secret are equal: the salt is not random")
	}
}

func TestParse_ArgonHashesAreNotFast(t *testing.T) {
	h, err := Parse(mustHash(t, "pw"))
	if err != nil || h.Fast() {
		t.Fatalf("Parse(argon2id) = fast %v, %v; want a slow hash", h.Fast(), err)
	}
}

func TestParse_RejectsBadDigests(t *testing.T) {
	good := HashSecret([]byte("secret"))
	parts := strings.Split(good, "$") // "", sha256, v=1, salt, digest
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	tests := map[string]string{
		"other version":     with(2, "v=2"),
		"no version":        "$sha256$" + parts[3] + "$" + parts[4],
		"short salt":        with(3, "AAAAAAAAAAA"),
		"long salt":         with(3, parts[3]+"AAAA"),
		"padded salt":       with(3, parts[3]+"=="),
		"short digest":      with(4, parts[4][:40]),
		"non-base64 digest": with(4, strings.Repeat("!", len(parts[4]))),
		"no digest":         "$sha256$v=1$" + parts[3],
		"empty digest":      with(4, ""),
		"trailing section":  good + "$x",
		"sha512":            with(1, "sha512"),
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(s); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) error = %v, want ErrMalformed", s, err)
			}
		})
	}
}

func TestDummySecret_IsADigestThatNeverMatches(t *testing.T) {
	d := DummySecret()
	if !d.Fast() || len(d.salt) != saltLen || len(d.key) != 32 {
		t.Fatalf("DummySecret = fast %v, salt %d bytes, digest %d bytes", d.Fast(), len(d.salt), len(d.key))
	}
	for _, s := range []string{"", "secret", strings.Repeat("a", 64)} {
		if d.Matches([]byte(s)) {
			t.Errorf("the dummy digest matches %q", s)
		}
	}
}

func mustHash(t *testing.T, pw string) string {
	t.Helper()
	s, err := Hash([]byte(pw), Default)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
