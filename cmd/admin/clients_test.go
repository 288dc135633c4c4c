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

// One name, one caller, the other way: an account may not take a
// registered client's id.
func TestAccountAdd_RefusesAClientsID(t *testing.T) {
	dir := t.TempDir()
	if _, err := admin(t, dir, "", "client", "add", "--id", "impo-web", "--redirect-uris", "https://a/cb"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"account", "add", "--name", "impo-web", "--roles", "editor"},
		{"account", "add", "--name", "Impo-Web", "--roles", "editor"}, // names are lower-cased first
		{"account", "add", "--name", "impo-web", "--roles", "pipeline", "--service", "--generate-secret"},
	} {
		out, err := admin(t, dir, "una clave larga y buena\n", args...)
		if err == nil || !strings.Contains(err.Error(), `"impo-web" ya es el client_id de un cliente registrado`) || out != "" {
			t.Errorf("admin %v: stdout %q, %v; want a refusal and no secret", args, out, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "accounts")); !os.IsNotExist(err) {
		t.Errorf("a refused add wrote the accounts file: %v", err)
	}
	// Another name is fine.
	if _, err := admin(t, dir, "una clave larga y buena\n", "account", "add", "--name", "ana"); err != nil {
		t.Fatal(err)
	}
}

// A pair that an older version or a hand-edited file left: add and
// update refuse to keep it; disable, enable and remove still work, so
// that it can be undone and a compromised account stopped at once.
func TestAccountAndClient_ASharedNameCanOnlyBeUndone(t *testing.T) {
	dir := t.TempDir()
	if _, err := admin(t, dir, "una clave larga y buena\n", "account", "add", "--name", "web"); err != nil {
		t.Fatal(err)
	}
	both := clients.Client{ID: "web", Kind: clients.Public, RedirectURIs: []string{"https://a/cb"},
		GrantTypes: []clients.Grant{clients.AuthorizationCode}}
	writeClients := func(cs ...clients.Client) {
		data, err := clients.Marshal(cs)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "clients"), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeClients(both)
	steps := []struct {
		stdin   string
		args    []string
		wantErr string
		warns   bool
	}{
		{"otra clave larga y buena\n", []string{"account", "update", "--name", "web", "--password"}, `"web" ya es el client_id`, false},
		{"", []string{"account", "update", "--name", "web", "--roles", "jefe"}, `"web" ya es el client_id`, false},
		{"", []string{"client", "update", "--id", "web", "--name", "Web"}, `"web" ya es el nombre de una cuenta`, false},
		{"", []string{"account", "disable", "--name", "web"}, "", true},
		{"", []string{"account", "enable", "--name", "web"}, "", true},
		{"", []string{"client", "remove", "--id", "web"}, "", false},
		{"", []string{"account", "update", "--name", "web", "--roles", "jefe"}, "", false},
	}
	for _, s := range steps {
		_, errw, err := adminStreams(t, dir, s.stdin, s.args...)
		if s.wantErr == "" && err != nil || s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)) {
			t.Fatalf("admin %v: error %v, want %q", s.args, err, s.wantErr)
		}
		if warned := strings.Contains(errw, `aviso: "web" es también el client_id`); warned != s.warns {
			t.Errorf("admin %v: stderr %q; want a warning: %v", s.args, errw, s.warns)
		}
	}
	if a, _, _ := readAccounts(t, dir).Lookup("web"); a.Roles[0] != "jefe" || a.Disabled {
		t.Errorf("web = %+v after the steps", a)
	}

	// Account remove undoes it from the other side.
	writeClients(both)
	if _, err := admin(t, dir, "", "account", "remove", "--name", "web"); err != nil {
		t.Fatalf("account remove of a shared name: %v", err)
	}
	if _, err := admin(t, dir, "", "client", "update", "--id", "web", "--name", "Web"); err != nil {
		t.Fatalf("client update once the account is gone: %v", err)
	}
}

// A clients file that cannot be read stops an account add (the check
// cannot be made), never a disable.
func TestAccount_ABrokenClientsFileStopsOnlyTheCheck(t *testing.T) {
	dir := t.TempDir()
	if _, err := admin(t, dir, "una clave larga y buena\n", "account", "add", "--name", "ana"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "clients"), []byte(`[{"client_id":"x"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := admin(t, dir, "una clave larga y buena\n", "account", "add", "--name", "bea"); err == nil || !strings.Contains(err.Error(), `leer los clientes, para comprobar que "bea" no es un client_id`) {
		t.Errorf("add with a broken clients file: %v", err)
	}
	if _, err := admin(t, dir, "", "account", "disable", "--name", "ana"); err != nil {
		t.Errorf("disable with a broken clients file: %v", err)
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
