package accounts

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"impo.com.uy/copetes/backend/shared/password"
)

func TestParse(t *testing.T) {
	hash, _ := password.Hash([]byte("pw"), password.Default)
	digest := password.HashSecret([]byte(NewServiceSecret()))
	acct := func(fields string) string {
		return `[{"name":"ana","kind":"user","hash":"` + hash + `","roles":["editor"]` + fields + `}]`
	}
	service := func(hash string) string {
		return `[{"name":"pipeline","kind":"service","hash":"` + hash + `","roles":["validate"]}]`
	}
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"ok", acct(""), ""},
		{"disabled", acct(`,"disabled":true`), ""},
		{"empty list", `[]`, ""},
		{"not a list", `{}`, "want a JSON slice"},
		{"unknown field", acct(`,"admin":true`), `unknown field "admin"`},
		{"bad kind", strings.Replace(acct(""), `"user"`, `"robot"`, 1), "kind must be"},
		{"upper-case name", strings.Replace(acct(""), `"ana"`, `"Ana"`, 1), "account name"},
		{"weak hash", strings.Replace(acct(""), "m=19456", "m=1024", 1), "below"},
		{"bad role", strings.Replace(acct(""), `"editor"`, `"Editor Jefe"`, 1), "role"},
		{"duplicate", `[` + acct("")[1:len(acct(""))-1] + `,` + acct("")[1:], "appears twice"},
		{"service with a secret's digest", service(digest), ""},
		{"service with argon2id, as before digests", service(hash), ""},
		{"person with a secret's digest", strings.Replace(acct(""), hash, digest, 1), "must be hashed with argon2id"},
		{"service with a malformed digest", service(digest[:len(digest)-4]), "digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestLookup_NormalizesName(t *testing.T) {
	hash, _ := password.Hash([]byte("pw"), password.Default)
	l, err := Parse([]byte(`[{"name":"ana","kind":"user","hash":"` + hash + `","roles":[]}]`))
	if err != nil {
		t.Fatal(err)
	}
	a, h, ok := l.Lookup("  Ana ")
	if !ok || a.Name != "ana" || !h.Matches([]byte("pw")) {
		t.Fatalf("Lookup(\"  Ana \") = %+v, %v", a, ok)
	}
	if _, _, ok := l.Lookup("bob"); ok {
		t.Fatal("Lookup found an account that does not exist")
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	hash, _ := password.Hash([]byte("pw"), password.Default)
	in := []Account{
		{Name: "pipeline", Kind: Service, Hash: hash, Roles: []string{"validate"}},
		{Name: "ana", Kind: User, Hash: hash, Roles: []string{}, Disabled: true},
	}
	data, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Account{in[1], in[0]} // sorted by name
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestCheckServiceSecret(t *testing.T) {
	for i := range 2000 {
		if s := NewServiceSecret(); CheckServiceSecret(s) != nil || len(s) != 64 {
			t.Fatalf("generated secret %d (%d characters) refused: %v", i, len(s), CheckServiceSecret(s))
		}
	}
	for name, secret := range map[string]string{
		"empty":              "",
		"a password":         "Correct-Horse-Battery-Staple-2024",
		"130 bits of base32": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
		"one letter, long":   strings.Repeat("a", 80),
		"two letters, long":  strings.Repeat("ab", 60),
	} {
		if CheckServiceSecret(secret) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCostliestHash_PerKindAndArgonOnly(t *testing.T) {
	strong := password.Params{Memory: 2 * password.Default.Memory, Time: 3, Threads: 1}
	hash := func(p password.Params) string {
		h, err := password.Hash([]byte("pw"), p)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	digest := password.HashSecret([]byte(NewServiceSecret()))
	tests := []struct {
		name         string
		accts        []Account
		kind         Kind
		want         password.Params
		wantArgon2id bool
	}{
		{"people: the strongest person's", []Account{
			{Name: "ana", Kind: User, Hash: hash(password.Default)},
			{Name: "bea", Kind: User, Hash: hash(strong)},
		}, User, strong, true},
		{"people: a service's costlier hash does not count", []Account{
			{Name: "ana", Kind: User, Hash: hash(password.Default)},
			{Name: "old-svc", Kind: Service, Hash: hash(strong)},
		}, User, password.Default, true},
		{"services: all digests, no argon2id", []Account{
			{Name: "ana", Kind: User, Hash: hash(strong)},
			{Name: "pipeline", Kind: Service, Hash: digest},
		}, Service, password.Params{}, false},
		{"services: one left on argon2id", []Account{
			{Name: "pipeline", Kind: Service, Hash: digest},
			{Name: "old-svc", Kind: Service, Hash: hash(password.Default)},
		}, Service, password.Default, true},
		{"no accounts", nil, User, password.Params{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.accts {
				tt.accts[i].Roles = []string{}
			}
			data, err := Marshal(tt.accts)
			if err != nil {
				t.Fatal(err)
			}
			l, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := l.CostliestHash(tt.kind); got != tt.want || ok != tt.wantArgon2id {
				t.Fatalf("CostliestHash(%s) = %+v, %v; want %+v, %v", tt.kind, got, ok, tt.want, tt.wantArgon2id)
			}
		})
	}
}
