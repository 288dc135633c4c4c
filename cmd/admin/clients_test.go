package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"impo.com.uy/copetes/backend/internal/secretstest"
	"impo.com.uy/copetes/backend/shared/clients"
)

func readClients(t *testing.T, dir string) *clients.List {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "clients"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := clients.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestClient_Lifecycle: each step either changes the file as said or is
// refused with a message that names what is wrong; a refused step leaves
// the file as it was.
func TestClient_Lifecycle(t *testing.T) {
	dir := t.TempDir()
	steps := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"client", "add", "--id", "impo-web", "--name", "Plataforma", "--redirect-uris", "https://app.impo.com.uy/cb, https://app.impo.com.uy/cb2",
			"--origins", "https://app.impo.com.uy", "--post-logout-uris", "https://app.impo.com.uy/"}, ""},
		{[]string{"client", "add", "--id", "impo-web", "--redirect-uris", "https://x/cb"}, "ya existe"},
		{[]string{"client", "add", "--redirect-uris", "https://x/cb"}, "falta --id"},
		{[]string{"client", "add", "--id", "Impo Web"}, `client id "Impo Web"`},
		{[]string{"client", "add", "--id", "sin-redireccion"}, `client "sin-redireccion": redirect_uris: empty`},
		{[]string{"client", "add", "--id", "x", "--redirect-uris", "http://app.impo.com.uy/cb"}, "only for loopback"},
		{[]string{"client", "add", "--id", "x", "--redirect-uris", "https://app.impo.com.uy/*"}, "no wildcards"},
		{[]string{"client", "add", "--id", "x", "--redirect-uris", "https://a/cb", "--grants", "client_credentials"}, "for services"},
		{[]string{"client", "add", "--id", "x", "--redirect-uris", "https://a/cb", "--origins", "https://a/"}, "an origin is"},
		{[]string{"client", "add", "--id", "x", "--redirect-uris", "https://a/cb", "suelto"}, "argumento de más"},
		{[]string{"client", "update", "--id", "nadie"}, "no existe"},
		// update replaces only what it is given; "" clears a list.
		{[]string{"client", "update", "--id", "impo-web", "--redirect-uris", "https://app.impo.com.uy/callback", "--post-logout-uris", ""}, ""},
		{[]string{"client", "update", "--id", "impo-web", "--grants", "refresh_token"}, "issues the first token"},
		{[]string{"client", "add", "--id", "viejo", "--grants", "password"}, ""},
		{[]string{"client", "remove", "--id", "viejo"}, ""},
		{[]string{"client", "remove", "--id", "viejo"}, "no existe"},
	}
	for _, s := range steps {
		_, err := admin(t, dir, "", s.args...)
		if s.wantErr == "" && err != nil || s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)) {
			t.Fatalf("admin %v: error %v, want %q", s.args, err, s.wantErr)
		}
	}
	l := readClients(t, dir)
	got, ok := l.Lookup("impo-web")
	want := clients.Client{
		ID: "impo-web", Name: "Plataforma", Kind: clients.Public,
		RedirectURIs:           []string{"https://app.impo.com.uy/callback"},
		AllowedOrigins:         []string{"https://app.impo.com.uy"},
		PostLogoutRedirectURIs: []string{},
		GrantTypes:             []clients.Grant{clients.AuthorizationCode, clients.RefreshToken},
	}
	if diff := cmp.Diff(want, got); !ok || diff != "" {
		t.Errorf("impo-web (found %v; -want +got):\n%s", ok, diff)
	}
	if l.Len() != 1 {
		t.Errorf("%d clients, want 1", l.Len())
	}
	out, err := admin(t, dir, "", "client", "list")
	if err != nil || out != "impo-web\tauthorization_code,refresh_token\thttps://app.impo.com.uy/callback\thttps://app.impo.com.uy\t-\tPlataforma\n" {
		t.Errorf("list = %q, %v", out, err)
	}
}

// The password grant is never a default, and listing it warns the
// operator of what it gives the application.
func TestClientAdd_PasswordGrantIsOptInAndWarned(t *testing.T) {
	dir := t.TempDir()
	out, errw, err := adminStreams(t, dir, "", "client", "add", "--id", "web", "--redirect-uris", "https://a/cb")
	if err != nil || out != "" || strings.Contains(errw, "aviso") || !strings.Contains(errw, `cliente "web" (add)`) {
		t.Fatalf("stdout %q, stderr %q, %v; want the status on stderr, no warning", out, errw, err)
	}
	if c, _ := readClients(t, dir).Lookup("web"); c.Allows(clients.Password) {
		t.Fatal("a client added without --grants may use the password grant")
	}
	_, errw, err = adminStreams(t, dir, "", "client", "update", "--id", "web", "--grants", "authorization_code,refresh_token,password")
	if err != nil || !strings.Contains(errw, "aviso: web puede usar el grant password") {
		t.Fatalf("stderr %q, %v; want the warning", errw, err)
	}
	if c, _ := readClients(t, dir).Lookup("web"); !c.Allows(clients.Password) {
		t.Fatal("--grants …,password did not allow the password grant")
	}
}

// One name, one caller: a client id may not be an account's name.
func TestClientAdd_RefusesAnAccountsName(t *testing.T) {
	dir := t.TempDir()
	if _, err := admin(t, dir, "", "account", "add", "--name", "pipeline", "--roles", "pipeline", "--service", "--generate-secret"); err != nil {
		t.Fatal(err)
	}
	_, err := admin(t, dir, "", "client", "add", "--id", "pipeline", "--redirect-uris", "https://a/cb")
	if err == nil || !strings.Contains(err.Error(), "ya es el nombre de una cuenta") {
		t.Fatalf("err = %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "clients")); !os.IsNotExist(err) {
		t.Errorf("the refused add wrote the file: %v", err)
	}
}

// CLIENTS_SECRET names the file, as it will for login.
func TestClient_SecretNameFromEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CLIENTS_SECRET", "clients-staging")
	if _, err := admin(t, dir, "", "client", "add", "--id", "web", "--redirect-uris", "https://a/cb"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "clients-staging")); err != nil {
		t.Fatal(err)
	}
}

func TestSecretPush_ChecksTheClientsFile(t *testing.T) {
	srv := secretstest.Start(t)
	srv.Create("impo-test", "clients")
	dir := t.TempDir()
	if _, err := admin(t, dir, "", "client", "add", "--id", "web", "--redirect-uris", "https://a/cb"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOOGLE_CLOUD_PROJECT", "impo-test")
	t.Setenv("SECRETMANAGER_EMULATOR_HOST", srv.Addr)
	if out, err := admin(t, dir, "", "secret", "push", "--secret", "clients"); err != nil || out != "projects/impo-test/secrets/clients/versions/1\n" {
		t.Fatalf("push: stdout %q, %v", out, err)
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte(`[{"client_id":"web","kind":"public","grant_types":["implicit"]}]`), 0o600)
	_, err := admin(t, dir, "", "secret", "push", "--secret", "clients", "--file", bad)
	if err == nil || !strings.Contains(err.Error(), `unknown grant "implicit"`) {
		t.Fatalf("pushing a bad clients file: %v", err)
	}
}
