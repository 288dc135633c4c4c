package login

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"impo.com.uy/copetes/backend/internal/testclock"
	"impo.com.uy/copetes/backend/shared/session"
)

// keys promote waits for the caches a new key passes through, one of
// them an HTTP cache keeping login's /jwks for its max-age: that max-age
// must be the one the wait counts (session.JWKSMaxAge). And the record of
// when each key was published, which the signing-key secret carries for
// keys promote, never reaches the published JWKS.
func TestJWKS_MaxAgeIsTheRotationsAndTheRecordStaysPrivate(t *testing.T) {
	ts := newTestServer(t, nil)
	a, _ := session.NewKey()
	b, _ := session.NewKey()
	data, err := session.MarshalKeySetPublished([]jose.JSONWebKey{a, b}, session.Published{a.KeyID: testclock.Start, b.KeyID: testclock.Start})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts.dir, "session-keys"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	r := ts.do("GET", "/jwks", "", "")
	if r.Status != 200 {
		t.Fatalf("GET /jwks: %d %s", r.Status, r.Body)
	}
	if got, want := r.Header.Get("Cache-Control"), fmt.Sprintf("max-age=%d", int(session.JWKSMaxAge.Seconds())); !strings.Contains(got, want) {
		t.Errorf("Cache-Control %q, want %s: keys promote would wait too little", got, want)
	}
	if !strings.Contains(r.Body, b.KeyID) || strings.Contains(r.Body, "published") {
		t.Errorf("GET /jwks = %s; want both keys and no record of their publication", r.Body)
	}
}
