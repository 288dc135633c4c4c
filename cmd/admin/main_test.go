package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/password"
	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/secrets/secretstest"
	"impo.com.uy/copetes/backend/shared/session"
)

// admin runs the tool in dir with stdin, returning stdout or the error.
func admin(t *testing.T, dir, stdin string, args ...string) (string, error) {
	t.Helper()
	t.Setenv("CREDENTIALS_DIR", dir)
	var out, errw bytes.Buffer
	err := run(args, strings.NewReader(stdin), &out, &errw)
	return out.String(), err
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
		{"", []string{"account", "add", "--name", "pipeline", "--roles", "validate", "--service", "--generate-secret"}, ""},
		{"corta\n", []string{"account", "add", "--name", "ana"}, "el mínimo es 12"},
		{"suficientemente larga\n", []string{"account", "add", "--name", "ana"}, ""},
		{"suficientemente larga\n", []string{"account", "add", "--name", "ana"}, "ya existe"},
		{"", []string{"account", "disable", "--name", "ana"}, ""},
		{"", []string{"account", "update", "--name", "nadie"}, "no existe"},
		{"otra contraseña larga\n", []string{"account", "update", "--name", "ana", "--password", "--roles", "jefe"}, ""},
		{"", []string{"account", "add"}, "falta --name"},
		{"", []string{"account", "add", "--name", "Ana Pérez"}, "account name"},
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

func TestAccountAdd_GeneratedSecretIsPrintedOnceAndWorks(t *testing.T) {
	dir := t.TempDir()
	out, err := admin(t, dir, "", "account", "add", "--name", "svc", "--service", "--generate-secret")
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimSpace(out[strings.Index(out, "): ")+3 : strings.Index(out, "\n")])
	if _, h, _ := readAccounts(t, dir).Lookup("svc"); !h.Matches([]byte(secret)) {
		t.Fatalf("printed secret %q does not match the stored hash", secret)
	}
}

func TestKeys_InitAddPromoteRetire(t *testing.T) {
	dir := t.TempDir()
	keyIDs := func() []string {
		data, _ := os.ReadFile(filepath.Join(dir, "session-keys"))
		ks, err := session.ParseKeySet(data)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, k := range ks.JWKS().Keys {
			ids = append(ids, k.KeyID)
		}
		return ids
	}
	if _, err := admin(t, dir, "", "keys", "init"); err != nil {
		t.Fatal(err)
	}
	first := keyIDs()
	if _, err := admin(t, dir, "", "keys", "init"); err == nil {
		t.Fatal("keys init over an existing set succeeded")
	}
	if _, err := admin(t, dir, "", "keys", "promote"); err == nil {
		t.Fatal("promote with one key succeeded")
	}
	admin(t, dir, "", "keys", "add")
	added := keyIDs()
	if len(added) != 2 || added[0] != first[0] {
		t.Fatalf("after add: %v; want %s still first (signing)", added, first[0])
	}
	admin(t, dir, "", "keys", "promote")
	if got := keyIDs(); len(got) != 2 || got[0] != added[1] || got[1] != first[0] {
		t.Fatalf("after promote: %v; want the new key %s first", got, added[1])
	}
	admin(t, dir, "", "keys", "retire")
	if got := keyIDs(); len(got) != 1 || got[0] != added[1] {
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
	if err != nil || !strings.Contains(out, "projects/impo-test/secrets/accounts/versions/1") {
		t.Fatalf("push: %q, %v", out, err)
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
