package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/internal/secretstest"
	"impo.com.uy/copetes/backend/internal/testclock"
	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/password"
	"impo.com.uy/copetes/backend/shared/secrets"
)

// admin runs the tool in dir with stdin, returning stdout or the error.
func admin(t *testing.T, dir, stdin string, args ...string) (string, error) {
	t.Helper()
	out, _, err := adminStreams(t, dir, stdin, args...)
	return out, err
}

// adminStreams is admin that also returns what the operator reads on
// standard error.
func adminStreams(t *testing.T, dir, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	t.Setenv("CREDENTIALS_DIR", dir)
	var out, errw bytes.Buffer
	err = run(args, strings.NewReader(stdin), &out, &errw)
	return out.String(), errw.String(), err
}

// adminAt is adminStreams on the clock clk, in dir, with no input.
func adminAt(t *testing.T, clk *testclock.Clock, dir string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	t.Setenv("CREDENTIALS_DIR", dir)
	var out, errw bytes.Buffer
	err = runAt(clk.Now, args, strings.NewReader(""), &out, &errw)
	return out.String(), errw.String(), err
}

func readAccounts(t *testing.T, dir string) *accounts.List {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "accounts"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := accounts.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestAccountAdd_FromStdinCreatesTheFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "credenciales")
	if _, err := admin(t, dir, "una clave larga y buena\n", "account", "add", "--name", "Ana", "--roles", "editor, lector"); err != nil {
		t.Fatal(err)
	}
	a, h, ok := readAccounts(t, dir).Lookup("ana")
	if !ok || a.Kind != accounts.User || strings.Join(a.Roles, ",") != "editor,lector" || !h.Matches([]byte("una clave larga y buena")) {
		t.Fatalf("account = %+v, found %v", a, ok)
	}
	info, _ := os.Stat(filepath.Join(dir, "accounts"))
	if info.Mode().Perm() != 0o600 {
		t.Errorf("accounts file mode = %v, want 0600", info.Mode().Perm())
	}
}

func TestAccount_Lifecycle(t *testing.T) {
	dir := t.TempDir()
	steps := []struct {
		stdin   string
		args    []string
		wantErr string
	}{
		{"", []string{"account", "add", "--name", "pipeline", "--roles", "pipeline", "--service", "--generate-secret"}, ""},
		{"corta\n", []string{"account", "add", "--name", "ana"}, "el mínimo es 12"},
		{"suficientemente larga\n", []string{"account", "add", "--name", "ana"}, ""},
		{"suficientemente larga\n", []string{"account", "add", "--name", "ana"}, "ya existe"},
		{"", []string{"account", "disable", "--name", "ana"}, ""},
		{"", []string{"account", "update", "--name", "nadie"}, "no existe"},
		{"otra contraseña larga\n", []string{"account", "update", "--name", "ana", "--password", "--roles", "jefe"}, ""},
		{"", []string{"account", "add"}, "falta --name"},
		{"", []string{"account", "add", "--name", "Ana Pérez"}, "account name"},
		// A service is never locked by guesses: its secret must be unguessable.
		{"una contraseña de persona\n", []string{"account", "add", "--name", "batch", "--service"}, "256 bits"},
		{"una contraseña de persona\n", []string{"account", "update", "--name", "pipeline", "--password"}, "256 bits"},
		{"", []string{"account", "unlock", "--name", "ana"}, "STATE_STORE=memory"},
	}
	for _, s := range steps {
		_, err := admin(t, dir, s.stdin, s.args...)
		if s.wantErr == "" && err != nil || s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)) {
			t.Fatalf("admin %v: error %v, want %q", s.args, err, s.wantErr)
		}
	}
	l := readAccounts(t, dir)
	a, h, _ := l.Lookup("ana")
	if !a.Disabled || a.Roles[0] != "jefe" || !h.Matches([]byte("otra contraseña larga")) {
		t.Errorf("ana = %+v", a)
	}
	if p, _, _ := l.Lookup("pipeline"); p.Kind != accounts.Service {
		t.Errorf("pipeline = %+v", p)
	}
	out, _ := admin(t, dir, "", "account", "list")
	if !strings.Contains(out, "ana\tuser\tjefe (deshabilitada)") {
		t.Errorf("list = %q", out)
	}
}

// A generated secret is the whole of stdout, so that the README's
// SECRETO=$(go run ./cmd/admin account add … --generate-secret) captures
// exactly the secret; the explanation goes to stderr.
func TestAccount_GeneratedSecretIsAloneOnStdout(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"account", "add", "--name", "svc", "--service", "--roles", "pipeline", "--generate-secret"},
		{"account", "update", "--name", "svc", "--generate-secret"},
	} {
		out, errw, err := adminStreams(t, dir, "", args...)
		if err != nil {
			t.Fatal(err)
		}
		secret, ok := strings.CutSuffix(out, "\n")
		if !ok || strings.ContainsAny(secret, " \t\n") || len(secret) < 20 {
			t.Fatalf("admin %v: stdout %q, want the secret alone on one line", args, out)
		}
		if _, h, _ := readAccounts(t, dir).Lookup("svc"); !h.Matches([]byte(secret)) {
			t.Fatalf("admin %v: printed secret does not match the stored hash", args)
		}
		if !strings.Contains(errw, "una sola vez") || strings.Contains(errw, secret) {
			t.Errorf("admin %v: stderr %q, want the explanation without the secret", args, errw)
		}
	}
}

// Commands that only change files say so on stderr: stdout stays empty
// for a script.
func TestAccountAdd_StatusGoesToStderr(t *testing.T) {
	out, errw, err := adminStreams(t, t.TempDir(), "suficientemente larga\n", "account", "add", "--name", "ana")
	if err != nil || out != "" || !strings.Contains(errw, `cuenta "ana" (add)`) {
		t.Fatalf("stdout %q, stderr %q, err %v; want an empty stdout and the status on stderr", out, errw, err)
	}
}

func TestKeys_InitAddPromoteRetire(t *testing.T) {
	dir := t.TempDir()
	if _, err := admin(t, dir, "", "keys", "init"); err != nil {
		t.Fatal(err)
	}
	first := keyIDs(t, dir)
	// Over an existing set, init refuses and names the commands that do exist.
	if _, err := admin(t, dir, "", "keys", "init"); err == nil || !strings.Contains(err.Error(), "keys add, keys promote y keys retire") {
		t.Fatalf("keys init over an existing set: %v, want a refusal naming keys add/promote/retire", err)
	}
	if _, err := admin(t, dir, "", "keys", "promote"); err == nil {
		t.Fatal("promote with one key succeeded")
	}
	clk := testclock.New(testclock.Start)
	adminAt(t, clk, dir, "keys", "add")
	added := keyIDs(t, dir)
	if len(added) != 2 || added[0] != first[0] {
		t.Fatalf("after add: %v; want %s still first (signing)", added, first[0])
	}
	clk.Advance(15 * time.Minute) // every cache has the new key (TestKeysPromote_…)
	if _, _, err := adminAt(t, clk, dir, "keys", "promote"); err != nil {
		t.Fatal(err)
	}
	if got := keyIDs(t, dir); len(got) != 2 || got[0] != added[1] || got[1] != first[0] {
		t.Fatalf("after promote: %v; want the new key %s first", got, added[1])
	}
	admin(t, dir, "", "keys", "retire")
	if got := keyIDs(t, dir); len(got) != 1 || got[0] != added[1] {
		t.Fatalf("after retire: %v; want only %s", got, added[1])
	}
}

func TestHash(t *testing.T) {
	out, err := admin(t, t.TempDir(), "contraseña de prueba\n", "hash")
	if err != nil {
		t.Fatal(err)
	}
	h, err := password.Parse(strings.TrimSpace(out))
	if err != nil || !h.Matches([]byte("contraseña de prueba")) {
		t.Fatalf("hash output %q: %v", out, err)
	}
}

func TestSecretPush_AddsAVersion(t *testing.T) {
	srv := secretstest.Start(t)
	srv.Create("impo-test", "accounts")
	dir := t.TempDir()
	admin(t, dir, "suficientemente larga\n", "account", "add", "--name", "ana")
	t.Setenv("GOOGLE_CLOUD_PROJECT", "impo-test")
	t.Setenv("SECRETMANAGER_EMULATOR_HOST", srv.Addr)
	out, err := admin(t, dir, "", "secret", "push", "--secret", "accounts")
	if err != nil || out != "projects/impo-test/secrets/accounts/versions/1\n" {
		t.Fatalf("push: stdout %q, %v; want the new version's name alone", out, err)
	}
	sm, _ := secrets.NewSecretManager(context.Background(), "impo-test", srv.Addr)
	defer sm.Close()
	got, _ := sm.Secret(context.Background(), "accounts")
	want, _ := os.ReadFile(filepath.Join(dir, "accounts"))
	if !bytes.Equal(got, want) {
		t.Fatal("the pushed version differs from the file")
	}
	os.WriteFile(filepath.Join(dir, "bad"), []byte("[1]"), 0o600)
	if _, err := admin(t, dir, "", "secret", "push", "--secret", "accounts", "--file", filepath.Join(dir, "bad")); err == nil {
		t.Fatal("pushing a malformed accounts file succeeded")
	}
}

func TestAccountList_WarnsOfHashesAtOtherParameters(t *testing.T) {
	dir := t.TempDir()
	strong, err := password.Hash([]byte("una clave larga y buena"), password.Params{Memory: 2 * password.Default.Memory, Time: 3, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	usual, _ := password.Hash([]byte("otra clave larga y buena"), password.Default)
	data, _ := accounts.Marshal([]accounts.Account{
		{Name: "fuerte", Kind: accounts.User, Roles: []string{"r"}, Hash: strong},
		{Name: "comun", Kind: accounts.User, Roles: []string{"r"}, Hash: usual},
	})
	if err := (secrets.Dir{Path: dir}).Write("accounts", data); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := adminStreams(t, dir, "", "account", "list")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "aviso: el hash de fuerte") || strings.Contains(stderr, "de comun") {
		t.Errorf("stderr = %q, want a warning for fuerte only", stderr)
	}
}

// A service's secret is stored as a digest, a person's password as
// argon2id; rotating the secret of a service that still holds an
// argon2id hash (from before digests) moves it to the digest.
func TestAccount_ServiceSecretsAreDigestsPeopleArgon(t *testing.T) {
	dir := t.TempDir()
	legacy, err := password.Hash([]byte(accounts.NewServiceSecret()), password.Default)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := accounts.Marshal([]accounts.Account{{Name: "viejo", Kind: accounts.Service, Roles: []string{"pipeline"}, Hash: legacy}})
	if err := (secrets.Dir{Path: dir}).Write("accounts", data); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := adminStreams(t, dir, "", "account", "list")
	if err != nil || !strings.Contains(stderr, "aviso: el secreto de viejo se guarda con argon2id") {
		t.Fatalf("list with an argon2id service: stderr %q, %v; want a warning to rotate it", stderr, err)
	}

	secret, err := admin(t, dir, "", "account", "add", "--name", "nuevo", "--service", "--roles", "pipeline", "--generate-secret")
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := admin(t, dir, "", "account", "update", "--name", "viejo", "--generate-secret")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin(t, dir, "una clave larga y buena\n", "account", "add", "--name", "ana"); err != nil {
		t.Fatal(err)
	}
	l := readAccounts(t, dir)
	for name, secret := range map[string]string{"nuevo": secret, "viejo": rotated} {
		a, h, _ := l.Lookup(name)
		if !strings.HasPrefix(a.Hash, "$sha256$v=1$") || !h.Fast() || !h.Matches([]byte(strings.TrimSpace(secret))) {
			t.Errorf("%s: hash %q, want the digest of the printed secret", name, a.Hash)
		}
	}
	if a, h, _ := l.Lookup("ana"); !strings.HasPrefix(a.Hash, "$argon2id$") || h.Fast() {
		t.Errorf("ana: hash %q, want argon2id", a.Hash)
	}
	_, stderr, _ = adminStreams(t, dir, "", "account", "list")
	if strings.Contains(stderr, "aviso") {
		t.Errorf("list after the rotation: stderr %q, want no warning", stderr)
	}
}
