package devcreds

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-jose/go-jose/v4"

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
	ks, err := session.ParseKeySet(keys)
	if err != nil {
		t.Fatal(err)
	}
	if ks.SigningKeyID(jose.EdDSA) == "" || ks.SigningKeyID(jose.ES256) == "" {
		t.Fatalf("dev key set signs EdDSA with %q and ES256 with %q; want both", ks.SigningKeyID(jose.EdDSA), ks.SigningKeyID(jose.ES256))
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

// The dev key set signs session tokens with EdDSA and ID tokens with
// ES256: an ES256 token verifies with the published P-256 key, and the
// session verifier's keys are Ed25519 only.
func TestDevKeySet_EdDSASessionsES256IDTokens(t *testing.T) {
	data, err := DevKeySet()
	if err != nil {
		t.Fatal(err)
	}
	ks, err := session.ParseKeySet(data)
	if err != nil {
		t.Fatal(err)
	}
	ed, ec := ks.SigningKeyID(jose.EdDSA), ks.SigningKeyID(jose.ES256)
	if _, ok := ks.PublicKeys()[ed]; !ok || len(ks.PublicKeys()) != 1 {
		t.Fatalf("session keys %v; want only the EdDSA signer %q", ks.PublicKeys(), ed)
	}
	tok, err := ks.SignES256("JWT", map[string]any{"sub": "dev"})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if kid := jws.Signatures[0].Header.KeyID; kid != ec {
		t.Fatalf("ES256 token signed by %q, want %q", kid, ec)
	}
	payload, err := jws.Verify(ks.ES256PublicKeys()[ec])
	if err != nil {
		t.Fatalf("ES256 token does not verify with the published key: %v", err)
	}
	var claims map[string]any
	if json.Unmarshal(payload, &claims); claims["sub"] != "dev" {
		t.Fatalf("claims = %s", payload)
	}
	if len(ks.JWKS().Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want the two public halves", len(ks.JWKS().Keys))
	}
}

// The dev client names the origin the local server runs at, so that a
// run on another port (the tests' PORT=0) can log in through the code flow.
func TestBootstrap_DevClientAtOrigin(t *testing.T) {
	for _, tc := range []struct{ origin, want string }{
		{"", DevOrigin},
		{"http://127.0.0.1:43123", "http://127.0.0.1:43123"},
	} {
		dir := t.TempDir()
		i := ids
		i.Origin = tc.origin
		if _, err := Bootstrap(dir, i); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(filepath.Join(dir, "clients"))
		l, err := clients.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		c, ok := l.Lookup(DevClient)
		if !ok || !c.RedirectAllowed(tc.want+"/example/callback") || !c.OriginAllowed(tc.want) || !c.PostLogoutRedirectAllowed(tc.want+"/example/") {
			t.Errorf("origin %q: dev client %+v; want it at %s", tc.origin, c, tc.want)
		}
	}
}
