package tests

import (
	"bufio"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogsHoldNoSecrets runs a whole session through a server and checks
// every line it wrote: no password, client secret, token or key.
func TestLogsHoldNoSecrets(t *testing.T) {
	dir, pw, clientSecret := setup(t)
	s := startLocal(t, "CREDENTIALS_DIR="+dir, "LOG_LEVEL=debug")
	form := "application/x-www-form-urlencoded"

	_, body := post(t, s.URL+"/Login/token", "application/json", `{"client_id":"impo-web-dev","username":"ana","password":"`+pw+`"}`)
	token := body["access_token"].(string)
	post(t, s.URL+"/Login/token", "application/json", `{"client_id":"impo-web-dev","username":"ana","password":"wrong-but-close-`+pw+`"}`)
	post(t, s.URL+"/Login/token", "application/json", `{"client_id":"impo-web-dev","username":"`+pw+`","password":"typed-in-the-wrong-field"}`)
	_, body = post(t, s.URL+"/Login/token", form, url.Values{"grant_type": {"client_credentials"},
		"client_id": {"pipeline"}, "client_secret": {clientSecret}}.Encode())
	serviceToken := body["access_token"].(string)
	post(t, s.URL+"/Login/introspect", form, url.Values{"token": {token}}.Encode(), "Authorization", "Bearer "+serviceToken)
	post(t, s.URL+"/Login/revoke", form, url.Values{"token": {token}}.Encode(), "Authorization", "Bearer "+token)
	post(t, s.URL+"/Login/introspect", form, url.Values{"token": {token}}.Encode(), "Authorization", "Bearer "+token)

	s.Stop(t) // all it wrote is in
	keys, _ := os.ReadFile(filepath.Join(dir, "session-keys"))
	var set struct{ Keys []struct{ D string } }
	json.Unmarshal(keys, &set)
	secrets := map[string]string{
		"password": pw, "client secret": clientSecret, "user token": token, "service token": serviceToken,
		"signing key": set.Keys[0].D, "typed password": "typed-in-the-wrong-field",
	}
	stdout, stderr := s.Stdout.String(), s.Stderr.String()
	for what, secret := range secrets {
		if strings.Contains(stdout, secret) || strings.Contains(stderr, secret) {
			t.Errorf("the %s appears in the server's output", what)
		}
	}
	// Parts of a token (its signature) would leak it just as well.
	if strings.Contains(stdout, token[strings.LastIndex(token, ".")+1:]) {
		t.Error("a token signature appears in the log")
	}

	// The log is structured: one Cloud Logging JSON object per line.
	events := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		if line["severity"] == nil || line["message"] == nil {
			t.Errorf("log line without severity or message: %q", sc.Text())
		}
		events[line["message"].(string)] = true
	}
	for _, e := range []string{"session issued", "login refused", "session revoked"} {
		if !events[e] {
			t.Errorf("no %q event in the log", e)
		}
	}
}
