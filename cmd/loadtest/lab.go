package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"impo.com.uy/copetes/backend/functions/gettoken"
	"impo.com.uy/copetes/backend/internal/devcreds"
	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/clients"
	"impo.com.uy/copetes/backend/shared/session"
)

// functionsUnderTest are the binaries measured, the trivial floor first:
// the deployed function packages (validate's binary serves Validate and
// ValidateHTTP; it is measured through ValidateHTTP, over HTTP).
var functionsUnderTest = []struct {
	name, pkg, target string
	first             string // the cold start's first request, for the report
}{
	{"trivial", "", "Hello", "`GET /`"},
	{"login", "functions/login", "Login", "`GET /jwks`"},
	{"gettoken", "functions/gettoken", "GetToken", "`POST /` con un token de sesión"},
	{"validate", "functions/validate", "ValidateHTTP", "`POST /`, documento de 1 KiB"},
}

// credentials are a fresh credentials folder and the accounts in it.
type credentials struct {
	Dir              string
	Person, Password string // a person (argon2id hash at the default cost)
	Service, Secret  string // a service account, made by cmd/admin as an operator would
}

// makeCredentials fills dir as a local run does (devcreds: signing keys,
// the dev person, gettoken's selfsigned key and a policy that lets the dev
// role have any token) and adds a service account with the dev role,
// through cmd/admin, so that its secret has the form admin gives it.
func makeCredentials(ctx context.Context, admin, dir string) (credentials, error) {
	made, err := devcreds.Bootstrap(dir, devcreds.IDs{Keys: session.DefaultKeysSecret, Accounts: accounts.DefaultSecret,
		GetTokenKey: gettoken.DefaultKeySecret, Policy: gettoken.DefaultPolicySecret, Clients: clients.DefaultSecret})
	if err != nil {
		return credentials{}, err
	}
	if made.DevPassword == "" {
		return credentials{}, fmt.Errorf("%s already held an accounts secret", dir)
	}
	c := credentials{Dir: dir, Person: devcreds.DevAccount, Password: made.DevPassword, Service: "loadtest"}
	cmd := exec.CommandContext(ctx, admin, "account", "add", "--name", c.Service, "--roles", "dev", "--service", "--generate-secret")
	cmd.Env = []string{"CREDENTIALS_DIR=" + dir}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return c, fmt.Errorf("admin account add: %v\n%s", err, stderr.String())
	}
	c.Secret = strings.TrimSpace(string(out))
	return c, nil
}

// env is the functions' environment: local secrets and state, gettoken's
// selfsigned source, and a rate limit that the load never reaches (it is
// still checked on every request).
func (c credentials) env() []string {
	return []string{"CREDENTIALS_DIR=" + c.Dir, "SECRETS_SOURCE=dir", "STATE_STORE=memory",
		"GETTOKEN_SOURCE=selfsigned", "GETTOKEN_RATE_LIMIT=1000000", "GETTOKEN_RATE_WINDOW=1s"}
}

// lab holds the functions' processes that the load phases share.
type lab struct {
	ctx     context.Context
	bins    map[string]binary
	env     []string
	creds   credentials
	servers map[string]*server
	client  *http.Client
	token   string // a session token of the service account
}

func (l *lab) stop() {
	for _, s := range l.servers {
		s.Stop()
	}
}

// startAll starts one process of each function and waits until each
// answers its first request. login comes first: the others need a
// session token.
func (l *lab) startAll() error {
	l.servers = map[string]*server{}
	l.client = &http.Client{Timeout: time.Minute}
	ctx, cancel := context.WithTimeout(l.ctx, 2*time.Minute)
	defer cancel()
	for _, fn := range functionsUnderTest {
		s, err := start(l.bins[fn.name], fn.target, l.env)
		if err != nil {
			return err
		}
		l.servers[fn.name] = s
		if fn.name == "login" {
			if err := s.dialed(ctx); err != nil {
				return err
			}
			if l.token, err = l.serviceToken(s.URL); err != nil {
				return err
			}
		}
		if err := s.ready(ctx, l.client, func() (*http.Request, error) { return l.firstRequest(fn.name)(s.URL) }); err != nil {
			return err
		}
	}
	return nil
}

// serviceToken logs the service account in at login's base URL.
func (l *lab) serviceToken(base string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {l.creds.Service}, "client_secret": {l.creds.Secret}}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	for range 100 {
		resp, err := l.client.PostForm(base+"/token", form)
		if err != nil {
			return "", err
		}
		err = json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusServiceUnavailable:
			continue // the accounts secret is read on first use
		case resp.StatusCode != http.StatusOK || err != nil || tok.AccessToken == "":
			return "", fmt.Errorf("the service account's login: %d %v", resp.StatusCode, err)
		}
		return tok.AccessToken, nil
	}
	return "", fmt.Errorf("the service account's login: 503, again and again")
}

// firstRequest makes the first request that a cold start of function name
// waits for.
func (l *lab) firstRequest(name string) func(base string) (*http.Request, error) {
	return func(base string) (*http.Request, error) {
		t := l.target(name, base, "1KiB")
		return t.Request()
	}
}

// target is the request that the scenarios send to function name at base
// (size picks validate's document).
func (l *lab) target(name, base, size string) vegeta.Target {
	bearer := http.Header{"Authorization": {"Bearer " + l.token}, "Content-Type": {"application/json"}}
	switch name {
	case "login":
		return vegeta.Target{Method: http.MethodGet, URL: base + "/jwks"}
	case "gettoken":
		return vegeta.Target{Method: http.MethodPost, URL: base + "/", Header: bearer,
			Body: []byte(`{"scopes":["https://www.googleapis.com/auth/cloud-platform"]}`)}
	case "validate":
		return vegeta.Target{Method: http.MethodPost, URL: base + "/", Header: bearer, Body: validDocuments()[size]}
	default:
		return vegeta.Target{Method: http.MethodGet, URL: base + "/"}
	}
}

// scenarios are the paths under load, the trivial floor first. Each
// fixed rate is well under what the path serves on one core, so that its
// latency is the path's own and not a queue's.
func (l *lab) scenarios() []scenario {
	login := l.servers["login"].URL
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {l.creds.Service}, "client_secret": {l.creds.Secret}}
	person, _ := json.Marshal(map[string]string{"client_id": devcreds.DevClient, "username": l.creds.Person, "password": l.creds.Password})
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	formHeader := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	v := l.servers["validate"].URL
	return []scenario{
		{Key: "trivial", Name: "función trivial (`{\"ok\":true}`)", Floor: true, Server: l.servers["trivial"],
			Target: l.target("trivial", l.servers["trivial"].URL, ""), Rate: 200, Workers: 8},
		{Key: "gettoken", Name: "GetToken, token en caché", Server: l.servers["gettoken"],
			Target: l.target("gettoken", l.servers["gettoken"].URL, ""), Rate: 200, Workers: 8},
		{Key: "client-credentials", Name: "login, cuenta de servicio (`client_credentials`)", Server: l.servers["login"],
			Target: vegeta.Target{Method: http.MethodPost, URL: login + "/token", Header: formHeader, Body: []byte(form.Encode())},
			Rate:   50, Workers: 8},
		{Key: "password", Name: "login, persona (argon2id)", Server: l.servers["login"],
			Target: vegeta.Target{Method: http.MethodPost, URL: login + "/token", Header: jsonHeader, Body: person},
			Rate:   10, Workers: 4},
		{Key: "validate-1KiB", Name: "ValidateHTTP, 1 KiB", Server: l.servers["validate"],
			Target: l.target("validate", v, "1KiB"), Rate: 100, Workers: 8},
		{Key: "validate-100KiB", Name: "ValidateHTTP, 100 KiB", Server: l.servers["validate"],
			Target: l.target("validate", v, "100KiB"), Rate: 20, Workers: 4},
		{Key: "validate-5MiB", Name: "ValidateHTTP, 5 MiB", Server: l.servers["validate"],
			Target: l.target("validate", v, "5MiB"), Rate: 2, Workers: 2},
	}
}

// burst starts a fresh login (with extra in its environment), sends it n
// person logins at once, and stops it.
func (l *lab) burst(n int, extra []string) (burstResult, error) {
	ctx, cancel := context.WithTimeout(l.ctx, 10*time.Minute)
	defer cancel()
	srv, err := start(l.bins["login"], "Login", append(append([]string{}, l.env...), extra...))
	if err != nil {
		return burstResult{}, err
	}
	defer srv.Stop()
	if err := srv.ready(ctx, l.client, func() (*http.Request, error) { return l.firstRequest("login")(srv.URL) }); err != nil {
		return burstResult{}, err
	}
	body, _ := json.Marshal(map[string]string{"client_id": devcreds.DevClient, "username": l.creds.Person, "password": l.creds.Password})
	return burst(ctx, srv, n, body)
}

// documents caches validDocuments: the 5 MiB one takes a while to make.
var documents map[string][]byte

// validDocuments are valid documents of about 1 KiB, 100 KiB and 5 MiB,
// mostly legal text with accents, as the pipeline sends (the same shape
// as shared/document's benchmarks).
func validDocuments() map[string][]byte {
	if documents != nil {
		return documents
	}
	documents = map[string][]byte{}
	for name, size := range map[string]int{"1KiB": 1 << 10, "100KiB": 100 << 10, "5MiB": 5 << 20} {
		const para = "Artículo %d. Apruébase la Rendición de Cuentas y Balance de Ejecución Presupuestal; el Poder Ejecutivo reglamentará.\n"
		var text strings.Builder
		for i := 1; text.Len() < size-400; i++ {
			fmt.Fprintf(&text, para, i)
		}
		documents[name], _ = json.Marshal(map[string]any{
			"document_id": "ley-20212", "type": "ley", "number": "20.212", "date": "2023-11-06",
			"text": text.String(), "title": "Rendición de cuentas", "copete": "Se aprueba la Rendición de Cuentas.",
			"publication_date": "2023-11-20", "issuer": "Poder Legislativo", "metadata": map[string]any{"paginas": 312},
		})
	}
	return documents
}
