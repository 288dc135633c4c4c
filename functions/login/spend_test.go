package login

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"impo.com.uy/copetes/backend/shared/store"
)

// readsDown is a state store whose reads fail, as in an outage.
type readsDown struct{ store.Store }

func (readsDown) Get(context.Context, string) (store.Entry, bool, error) {
	return store.Entry{}, false, store.ErrUnavailable
}

// outages are the failures a code or refresh grant may meet after it has
// found its code or refresh token good: each is answered 500 or 503, and
// undone by restore.
var outages = []struct {
	name   string
	status int
	break_ func(*testServer) (restore func())
}{
	{"the accounts secret unreadable", 500, func(ts *testServer) func() { return hide(ts, "accounts") }},
	{"the signing keys unreadable", 500, func(ts *testServer) func() { return hide(ts, "session-keys") }},
	{"the ended-sessions marks unreadable", 503, func(ts *testServer) func() {
		st := ts.auth.Revocations.Store
		ts.auth.Revocations.Store = readsDown{st}
		return func() { ts.auth.Revocations.Store = st }
	}},
}

// hide moves a secret away, and returns what puts it back.
func hide(ts *testServer, id string) func() {
	p := filepath.Join(ts.dir, id)
	if err := os.Rename(p, p+".away"); err != nil {
		panic(err)
	}
	return func() { os.Rename(p+".away", p) }
}

// A refresh answered 500 or 503 used to have spent its refresh token
// already: the rotation came first, the checks of the account, its ended
// sessions and the signing after. The client, told to retry, retried
// with the only token it had, which was then reuse, and the family was
// revoked: a Secret Manager or Firestore hiccup logged the person out.
// Now every check that can fail runs before the token is used up.
func TestRefreshGrant_AFailureSpendsNoRefreshToken(t *testing.T) {
	for _, tt := range outages {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			first := ts.codeFlow(t, webClient)
			restore := tt.break_(ts)
			r := ts.refreshWith(webClient, first.Refresh)
			restore()
			if r.Status != tt.status {
				t.Fatalf("refresh in the outage: %d %s, want %d", r.Status, r.Body, tt.status)
			}
			okTokens(t, ts.refreshWith(webClient, first.Refresh))
		})
	}
}

// The same for a code: an exchange answered 500 or 503 leaves the code
// for the client's retry, within its minute, rather than turning the
// retry into a replay that revokes the login.
func TestCodeGrant_AFailureSpendsNoCode(t *testing.T) {
	for _, tt := range outages {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			code := ts.code(t, ts.grant(webClient, "ana"))
			restore := tt.break_(ts)
			r := ts.exchange(webClient, code)
			restore()
			if r.Status != tt.status {
				t.Fatalf("exchange in the outage: %d %s, want %d", r.Status, r.Body, tt.status)
			}
			okTokens(t, ts.exchange(webClient, code))
		})
	}
}
