package password

import (
	"errors"
	"strings"
	"testing"
)

func TestHashThenMatch(t *testing.T) {
	phc, err := Hash([]byte("correct horse"), Default)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("Hash = %q, want the PHC form with OWASP's floor", phc)
	}
	h, err := Parse(phc)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Matches([]byte("correct horse")) {
		t.Error("the right password does not match")
	}
	if h.Matches([]byte("correct horsE")) {
		t.Error("a wrong password matches")
	}
	other, _ := Hash([]byte("correct horse"), Default)
	if other == phc {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
}

func TestParse_RejectsBadHashes(t *testing.T) {
	good, _ := Hash([]byte("pw"), Default)
	parts := strings.Split(good, "$")
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	tests := map[string]string{
		"empty":             "",
		"bcrypt":            "$2b$12$abcdefghijklmnopqrstuu5sC0UXJbPPSM9yG3Ih6jn8aWhB6lXGq",
		"argon2i":           with(1, "argon2i"),
		"old version":       with(2, "v=16"),
		"below floor m":     with(3, "m=4096,t=2,p=1"),
		"below floor t":     with(3, "m=19456,t=1,p=1"),
		"zero lanes":        with(3, "m=19456,t=2,p=0"),
		"huge memory":       with(3, "m=4194304,t=2,p=1"),
		"param order":       with(3, "t=2,m=19456,p=1"),
		"padded base64":     with(4, parts[4]+"=="),
		"short salt":        with(4, "AAAA"),
		"trailing section":  good + "$x",
		"non-base64 digest": with(5, "!!!!"),
	}
	for name, phc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(phc); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) error = %v, want ErrMalformed", phc, err)
			}
		})
	}
}

func TestParse_AcceptsStrongerParams(t *testing.T) {
	phc, err := Hash([]byte("pw"), Params{Memory: 32768, Time: 3, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	h, err := Parse(phc)
	if err != nil || h.Params != (Params{32768, 3, 2}) || !h.Matches([]byte("pw")) {
		t.Fatalf("Parse = %+v, %v", h.Params, err)
	}
}

func TestDummy_NeverMatchesAndCostsWhatItsParamsSay(t *testing.T) {
	p := Params{Memory: 32768, Time: 3, Threads: 1}
	d := Dummy(p)
	for _, pw := range []string{"", "password", "admin"} {
		if d.Matches([]byte(pw)) {
			t.Errorf("the dummy hash matches %q", pw)
		}
	}
	if d.Params != p || len(d.key) != keyLen || len(d.salt) != saltLen {
		t.Errorf("Dummy(%+v) = params %+v, key %d bytes, salt %d bytes", p, d.Params, len(d.key), len(d.salt))
	}
}
