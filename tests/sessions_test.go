package tests

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

// A document ValidateHTTP accepts: 200 with a session, 401 without one.
const validDocument = `{"document_id":"ley-9","type":"ley","number":"9","date":"2024-05-02","text":"Artículo 1."}`

const opsPassword = "la contraseña larga de ops"

// sessionVerdicts is how every verifier judges one session token.
type sessionVerdicts struct {
	GetToken     int  // status
	ValidateHTTP int  // status
	Active       bool // login's introspection
}

var (
	accepted = sessionVerdicts{GetToken: 200, ValidateHTTP: 200, Active: true}
	refused  = sessionVerdicts{GetToken: 401, ValidateHTTP: 401, Active: false}
)

// judge asks GetToken and ValidateHTTP on s, and introspection on login
// (another process, or s itself), what they make of token. Introspection
// is asked by the pipeline service with its client credentials, which no
// test here ends.
func judge(t *testing.T, s, login *localServer, token, pipelineSecret string) sessionVerdicts {
	t.Helper()
	var v sessionVerdicts
	v.GetToken, _ = post(t, s.URL+"/GetToken", "application/json", `{"scopes":["`+storageRead+`"]}`, "Authorization", "Bearer "+token)
	v.ValidateHTTP, _ = post(t, s.URL+"/ValidateHTTP", "application/json", validDocument, "Authorization", "Bearer "+token)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("pipeline:"+pipelineSecret))
	st, body := post(t, login.URL+"/Login/introspect", "application/x-www-form-urlencoded",
		url.Values{"token": {token}}.Encode(), "Authorization", basic)
	if st != 200 {
		t.Fatalf("introspect: %d %v", st, body)
	}
	v.Active = body["active"] == true
	return v
}

// sessionsSetup is setup plus ops, a person with the role session-admin.
func sessionsSetup(t *testing.T) (dir, password, clientSecret string) {
	t.Helper()
	dir, password, clientSecret = setup(t)
	runAdmin(t, opsPassword+"\n", []string{"CREDENTIALS_DIR=" + dir}, "account", "add", "--name", "ops", "--roles", "session-admin")
	return dir, password, clientSecret
}

func logIn(t *testing.T, s *localServer, user, password string) string {
	t.Helper()
	st, body := post(t, s.URL+"/Login/token", "application/json", `{"client_id":"impo-web-dev","username":"`+user+`","password":"`+password+`"}`)
	if st != 200 {
		t.Fatalf("login as %s: %d %v", user, st, body)
	}
	return body["access_token"].(string)
}

// endSessions asks login on s to end every session of subject, as the
// README documents, with the caller's bearer token.
func endSessions(t *testing.T, s *localServer, caller, subject string) (int, map[string]any) {
	t.Helper()
	return post(t, s.URL+"/Login/revoke", "application/x-www-form-urlencoded",
		url.Values{"subject": {subject}}.Encode(), "Authorization", "Bearer "+caller)
}

// TestSessions_DisablingAnAccountEndsItsSessions is the local run (one
// process, memory store): cmd/admin disables ana and, unable to reach
// the process's store, says how to end her sessions now; a session-admin
// does so over /revoke, and every verifier refuses her tokens at once.
func TestSessions_DisablingAnAccountEndsItsSessions(t *testing.T) {
	dir, pw, secret := sessionsSetup(t)
	s := startLocal(t, "CREDENTIALS_DIR="+dir, "GETTOKEN_POLICY="+`{"roles":{"editor":{"scopes":["`+storageRead+`"]}}}`)
	ana := logIn(t, s, "ana", pw)
	ops := logIn(t, s, "ops", opsPassword)
	if got := judge(t, s, s, ana, secret); got != accepted {
		t.Fatalf("ana's token before anything: %+v, want %+v", got, accepted)
	}

	_, stderr := runAdminStreams(t, "", []string{"CREDENTIALS_DIR=" + dir}, "account", "disable", "--name", "ana")
	for _, want := range []string{"/Login/revoke", "subject=ana", "session-admin"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("cmd/admin with the memory store does not say how to end the sessions now (%q):\n%s", want, stderr)
		}
	}

	// Only a session-admin may end another account's sessions.
	if st, body := endSessions(t, s, ana, "pipeline"); st != 403 {
		t.Fatalf("ana (no session-admin) ends pipeline's sessions: %d %v, want 403", st, body)
	}
	if st, body := endSessions(t, s, ops, "ana"); st != 200 {
		t.Fatalf("ops (session-admin) ends ana's sessions: %d %v, want 200", st, body)
	}
	if got := judge(t, s, s, ana, secret); got != refused {
		t.Fatalf("ana's token after her account was disabled and her sessions ended: %+v, want %+v", got, refused)
	}
	if got := judge(t, s, s, ops, secret); got.ValidateHTTP != 200 || !got.Active { // no role of ops's may ask gettoken
		t.Fatalf("ending ana's sessions touched ops's: %+v", got)
	}
}

// TestTwoInstances_DisablingAnAccountEndsItsSessions is production's
// shape: two processes sharing the Firestore emulator, and cmd/admin
// writing the mark into that same store as an operator would. A token
// issued by one process is refused by the other (no "not revoked" cache
// here, see firestoreEnv: its bound is tested in shared/session).
func TestTwoInstances_DisablingAnAccountEndsItsSessions(t *testing.T) {
	dir, pw, secret := sessionsSetup(t)
	env := firestoreEnv(t, dir)
	a, b := startLocal(t, env...), startLocal(t, env...)
	ana := logIn(t, a, "ana", pw)
	ops := logIn(t, a, "ops", opsPassword)
	if got := judge(t, b, a, ana, secret); got != accepted {
		t.Fatalf("ana's token before anything: %+v, want %+v", got, accepted)
	}

	runAdmin(t, "", env, "account", "disable", "--name", "ana")
	if got := judge(t, b, a, ana, secret); got != refused {
		t.Fatalf("ana's token after cmd/admin disabled her account: %+v, want %+v", got, refused)
	}

	// The same through /revoke on one process, seen by the other.
	pipeline := clientToken(t, a, secret)
	if got := judge(t, b, a, pipeline, secret); got.GetToken != 403 || got.ValidateHTTP != 200 || !got.Active {
		t.Fatalf("pipeline's token before anything: %+v", got) // its role may not ask gettoken for anything
	}
	if st, body := endSessions(t, a, ops, "pipeline"); st != 200 {
		t.Fatalf("ops (session-admin) ends pipeline's sessions: %d %v", st, body)
	}
	if st, _ := post(t, b.URL+"/ValidateHTTP", "application/json", validDocument, "Authorization", "Bearer "+pipeline); st != 401 {
		t.Fatalf("the other process still accepts pipeline's token after its sessions were ended: %d", st)
	}
	if got := judge(t, b, a, ops, secret); got.ValidateHTTP != 200 || !got.Active {
		t.Fatalf("ending others' sessions touched ops's: %+v", got)
	}
}

// clientToken logs pipeline in with its client credentials.
func clientToken(t *testing.T, s *localServer, secret string) string {
	t.Helper()
	st, body := post(t, s.URL+"/Login/token", "application/x-www-form-urlencoded",
		url.Values{"grant_type": {"client_credentials"}, "client_id": {"pipeline"}, "client_secret": {secret}}.Encode())
	if st != 200 {
		t.Fatalf("client credentials: %d %v", st, body)
	}
	return body["access_token"].(string)
}
