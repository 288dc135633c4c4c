package devcreds

import (
	"os"
	"path/filepath"
	"testing"

	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/clients"
	"impo.com.uy/copetes/backend/shared/googletoken"
	"impo.com.uy/copetes/backend/shared/session"
	"impo.com.uy/copetes/backend/shared/tokenpolicy"
)

var ids = IDs{Keys: "session-keys", Accounts: "accounts", GetTokenKey: "gettoken-key", Policy: "gettoken-policy", Clients: "clients"}

func TestBootstrap_CreatesOnceAndNeverOverwrites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "credenciales")
	made, err := Bootstrap(dir, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(made.Files) != 5 || len(made.DevPassword) < 20 {
		t.Fatalf("first run made %+v", made)
	}
	keys, _ := os.ReadFile(filepath.Join(dir, "session-keys"))
	if _, err := session.ParseKeySet(keys); err != nil {
		t.Fatal(err)
	}
	accts, _ := os.ReadFile(filepath.Join(dir, "accounts"))
	l, err := accounts.Parse(accts)
	if err != nil {
		t.Fatal(err)
	}
	if _, h, ok := l.Lookup(DevAccount); !ok || !h.Matches([]byte(made.DevPassword)) {
		t.Fatal("the dev account does not take the returned password")
	}

	saKey, _ := os.ReadFile(filepath.Join(dir, "gettoken-key"))
	if _, err := googletoken.ParseKey(saKey); err != nil {
		t.Fatalf("dev service-account key: %v", err)
	}
	policy, _ := os.ReadFile(filepath.Join(dir, "gettoken-policy"))
	if p, err := tokenpolicy.Parse(policy); err != nil || len(p.Wildcards()) != 1 {
		t.Fatalf("dev policy: %v", err)
	}

	cl, _ := os.ReadFile(filepath.Join(dir, "clients"))
	cs, err := clients.Parse(cl)
	if err != nil {
		t.Fatalf("dev clients: %v", err)
	}
	if c, ok := cs.Lookup(DevClient); !ok || !c.RedirectAllowed(DevOrigin+"/example/callback") || !c.Allows(clients.Password) {
		t.Fatalf("dev client = %+v, %v; want the example's callback and the password grant for the curl walkthrough", c, ok)
	}

	again, err := Bootstrap(dir, ids)
	if err != nil || len(again.Files) != 0 || again.DevPassword != "" {
		t.Fatalf("second run made %+v, %v; want nothing", again, err)
	}
	if k2, _ := os.ReadFile(filepath.Join(dir, "session-keys")); string(k2) != string(keys) {
		t.Fatal("the second run replaced the signing keys")
	}
}
