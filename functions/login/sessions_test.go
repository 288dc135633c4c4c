package login

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/shared/accounts"
)

func TestRevoke_SubjectEndsEverySessionOfAnAccount(t *testing.T) {
	ts := newTestServer(t, nil)
	ana := ts.login(t, "ana", "ana-secret-pw")
	ana2 := ts.login(t, "ana", "ana-secret-pw")
	ops := ts.login(t, "ops", "ops-secret-pw")
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("pipeline:pipeline-client-secret"))
	active := func(token string) bool {
		t.Helper()
		r := ts.do("POST", "/introspect", ctForm, form("token", token), "Authorization", basic)
		if r.Status != 200 {
			t.Fatalf("introspect: %d %s", r.Status, r.Body)
		}
		return r.json(t)["active"] == true
	}

	refusals := []struct {
		name       string
		body       string
		header     []string
		wantStatus int
		wantDetail string
	}{
		{"by an account without session-admin", form("subject", "ops"), []string{"Authorization", "Bearer " + ana}, 403, "session-admin"},
		{"by a service without session-admin", form("subject", "ana"), []string{"Authorization", basic}, 403, "session-admin"},
		{"without credentials", form("subject", "ana"), nil, 401, ""},
		{"with token and subject", form("subject", "ana", "token", ana), []string{"Authorization", "Bearer " + ops}, 400, "not both"},
		{"of a name no account can have", form("subject", "Ana Pérez"), []string{"Authorization", "Bearer " + ops}, 400, "account name"},
	}
	for _, tt := range refusals {
		r := ts.do("POST", "/revoke", ctForm, tt.body, tt.header...)
		if r.Status != tt.wantStatus || !strings.Contains(r.Body, tt.wantDetail) {
			t.Errorf("ending sessions %s: %d %s; want %d mentioning %q", tt.name, r.Status, r.Body, tt.wantStatus, tt.wantDetail)
		}
	}
	if !active(ana) || !active(ana2) {
		t.Fatal("a refused request ended ana's sessions")
	}

	r := ts.do("POST", "/revoke", ctForm, form("subject", " ANA "), "Authorization", "Bearer "+ops)
	if r.Status != 200 || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("a session-admin ends ana's sessions: %d %v %s", r.Status, r.Header, r.Body)
	}
	if active(ana) || active(ana2) {
		t.Fatal("ana's tokens are still active after her sessions were ended")
	}
	if !active(ops) {
		t.Fatal("ending ana's sessions ended the session-admin's too")
	}
	ts.clock.Advance(time.Second) // the end refuses its own second, see session.EndSessions
	if again := ts.login(t, "ana", "ana-secret-pw"); !active(again) {
		t.Fatal("ana's new session, opened after the end, is not active")
	}
	// An account that no longer exists may still have sessions to end.
	if r := ts.do("POST", "/revoke", ctForm, form("subject", "ya-no-existe"), "Authorization", "Bearer "+ops); r.Status != 200 {
		t.Fatalf("ending the sessions of a removed account: %d %s", r.Status, r.Body)
	}
}

// TestIntrospect_AccountNoLongerEnabledIsInactive: login reads the
// accounts list anyway, so it stops vouching for the tokens of an account
// disabled or removed as soon as it sees the list, mark or no mark.
func TestIntrospect_AccountNoLongerEnabledIsInactive(t *testing.T) {
	for _, change := range []string{"disable", "remove"} {
		t.Run(change, func(t *testing.T) {
			ts := newTestServer(t, nil)
			ana := ts.login(t, "ana", "ana-secret-pw")
			basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("pipeline:pipeline-client-secret"))
			if r := ts.do("POST", "/introspect", ctForm, form("token", ana), "Authorization", basic); r.json(t)["active"] != true {
				t.Fatalf("before: %s", r.Body)
			}

			list, err := accounts.Unmarshal(accountsJSON)
			if err != nil {
				t.Fatal(err)
			}
			for i := range list {
				if list[i].Name == "ana" {
					if change == "disable" {
						list[i].Disabled = true
					} else {
						list = append(list[:i], list[i+1:]...)
					}
					break
				}
			}
			data, _ := accounts.Marshal(list)
			if err := os.WriteFile(filepath.Join(ts.dir, "accounts"), data, 0o600); err != nil {
				t.Fatal(err)
			}

			if r := ts.do("POST", "/introspect", ctForm, form("token", ana), "Authorization", basic); strings.TrimSpace(r.Body) != `{"active":false}` {
				t.Fatalf("introspecting a token of a %sd account: %d %s, want {\"active\":false}", change, r.Status, r.Body)
			}
			if r := ts.do("POST", "/introspect", ctForm, form("token", "x"), "Authorization", "Bearer "+ana); r.Status != 401 {
				t.Fatalf("a %sd account's token as the caller: %d %s, want 401", change, r.Status, r.Body)
			}
		})
	}
}
