package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"impo.com.uy/copetes/backend/internal/devcreds"
)

// newBrowser starts Debian's headless Chromium (./test.sh installs it) on
// a fresh profile and returns a tab's context, bounded by startGuard; the
// browser ends with the test. The flags keep it off the network but for
// the pages it is sent to: without them it calls Google's hosts at start,
// which a closed network refuses.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("no chromium on PATH: ./test.sh installs Debian's (apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], // headless, no first run, no background networking, no sync
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root in a container
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()), // removed after the browser ends: cleanups run last first
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc) // waits for the process to end
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	// The first action starts the browser and ties it to this context:
	// the one without the guard's deadline.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("chromium did not start: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, startGuard)
	t.Cleanup(cancel)
	return ctx
}

// do runs actions on the tab, failing the test with what on error.
func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// navigation runs actions that load a page and returns its response (the
// last one, after redirects).
func navigation(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) *network.Response {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return resp
}

// waitUntil waits until the JavaScript expression is true in the page.
func waitUntil(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(startGuard))); err != nil {
		t.Fatalf("waiting until %s: %v", what, err)
	}
}

// evaluate returns the value of the JavaScript expression in the page.
func evaluate[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func header(resp *network.Response, name string) string {
	for k, v := range resp.Headers {
		if strings.EqualFold(k, name) {
			return fmt.Sprint(v)
		}
	}
	return ""
}

// exampleState is what the example page shows, and the tokens it keeps.
type exampleState struct {
	URL       string `json:"url"`
	Status    string `json:"status"` // #estado
	Error     string `json:"error"`  // #error, "" while hidden
	LoggedIn  bool   `json:"logged_in"`
	User      string `json:"user"`
	Expires   string `json:"expires"`
	Result    string `json:"result"` // #resultado and its data-*
	Action    string `json:"action"`
	Outcome   string `json:"outcome"`
	HTTP      string `json:"http"`
	Access    string `json:"access"`
	Refresh   string `json:"refresh"`
	IDToken   string `json:"id_token"`
	Anonymous bool   `json:"anonymous"` // Entrar shows
}

const exampleStateJS = `(() => {
	const el = (id) => document.getElementById(id);
	const s = JSON.parse(sessionStorage.getItem("sesion") || "{}");
	const r = el("resultado");
	return {
		url: location.href, status: el("estado").textContent, error: el("error").hidden ? "" : el("error").textContent,
		logged_in: !el("sesion").hidden, anonymous: !el("anonimo").hidden,
		user: el("usuario").textContent, expires: el("vence").textContent,
		result: r.textContent, action: r.dataset.accion || "", outcome: r.dataset.estado || "", http: r.dataset.status || "",
		access: s.access || "", refresh: s.refresh || "", id_token: s.idToken || "",
	};
})()`

func pageState(t *testing.T, ctx context.Context) exampleState {
	t.Helper()
	return evaluate[exampleState](t, ctx, exampleStateJS)
}

// press clicks one of the example's buttons whose action stays on the
// page and waits for its outcome in #resultado.
func press(t *testing.T, ctx context.Context, button, action string) exampleState {
	t.Helper()
	do(t, ctx, "click "+button, chromedp.Click(chromedp.ID(button)))
	waitUntil(t, ctx, action+" is over", `document.getElementById("resultado").dataset.accion === "`+action+`"`)
	st := pageState(t, ctx)
	if st.Outcome != "ok" {
		t.Fatalf("%s: %s (error: %s)", action, st.Result, st.Error)
	}
	return st
}

// The browser test: a person logs in to the example client
// through login's hosted page, with a wrong password first, and the client
// calls GetToken, renews its tokens and logs out, all in headless Chromium.
func TestBrowser_CodeFlowWithTheExamplePage(t *testing.T) {
	s, _, pw := freshCheckout(t)
	issuer := s.URL + "/Login"
	ctx := newBrowser(t)
	browserCodeFlow(t, ctx, s.URL, issuer, pw)
}

func browserCodeFlow(t *testing.T, ctx context.Context, base, issuer, pw string) {
	// The example page, not logged in.
	do(t, ctx, "open the example", chromedp.EmulateViewport(900, 720), chromedp.Navigate(base+"/example/"))
	waitUntil(t, ctx, "the example shows Entrar", `!document.getElementById("anonimo").hidden`)

	// Entrar: to the hosted login page, with a PKCE S256 request.
	resp := navigation(t, ctx, "Entrar", chromedp.Click(chromedp.ID("entrar")))
	authz, err := url.Parse(resp.URL)
	if err != nil || !strings.HasPrefix(resp.URL, issuer+"/authorize?") || resp.Status != http.StatusOK {
		t.Fatalf("Entrar led to %d %s, want 200 at %s/authorize", resp.Status, resp.URL, issuer)
	}
	q := authz.Query()
	for name, want := range map[string]string{
		"response_type": "code", "client_id": devcreds.DevClient, "redirect_uri": base + "/example/callback",
		"scope": "openid", "code_challenge_method": "S256",
	} {
		if got := q.Get(name); got != want {
			t.Errorf("authorization request %s = %q, want %q", name, got, want)
		}
	}
	for name, pattern := range map[string]string{
		"code_challenge": `^[A-Za-z0-9_-]{43}$`, // base64url of a SHA-256
		"state":          `^[A-Za-z0-9_-]{22}$`, // 16 random bytes
		"nonce":          `^[A-Za-z0-9_-]{22}$`,
	} {
		if !regexp.MustCompile(pattern).MatchString(q.Get(name)) {
			t.Errorf("authorization request %s = %q, want %s", name, q.Get(name), pattern)
		}
	}
	checkHostedPage(t, ctx, resp)
	screenshotLoginPage(t, ctx)

	// A wrong password: the page says so, in Spanish, and keeps the name.
	do(t, ctx, "type the user", chromedp.SendKeys(chromedp.CSS(`input[autocomplete="username"]`), devcreds.DevAccount))
	resp = navigation(t, ctx, "submit a wrong password",
		chromedp.SendKeys(chromedp.CSS(`input[autocomplete="current-password"]`), "no-es-la-contraseña"+kb.Enter))
	if resp.Status != http.StatusBadRequest {
		t.Errorf("wrong password: %d, want 400", resp.Status)
	}
	type retry struct {
		Alert    string `json:"alert"`
		User     string `json:"user"`
		Password string `json:"password"`
	}
	r := evaluate[retry](t, ctx, `({
		alert: [...document.querySelectorAll('[role="alert"]')].map((e) => e.textContent).join(" "),
		user: document.querySelector('input[autocomplete="username"]').value,
		password: document.querySelector('input[autocomplete="current-password"]').value,
	})`)
	if !strings.Contains(r.Alert, "Usuario o contraseña incorrectos.") {
		t.Errorf("wrong password: alert %q, want «Usuario o contraseña incorrectos.»", r.Alert)
	}
	if r.User != devcreds.DevAccount || r.Password != "" {
		t.Errorf("after a wrong password the form holds user %q and password %q; want the name kept, the password not", r.User, r.Password)
	}

	// The right password, by keyboard: back at the example's callback,
	// which trades the code for tokens and drops it from the address.
	resp = navigation(t, ctx, "submit the password",
		chromedp.SetValue(chromedp.CSS(`input[autocomplete="username"]`), devcreds.DevAccount),
		chromedp.SendKeys(chromedp.CSS(`input[autocomplete="current-password"]`), pw+kb.Enter))
	if !strings.HasPrefix(resp.URL, base+"/example/callback?") || resp.Status != http.StatusOK {
		t.Fatalf("after the password: %d %s, want the example's callback", resp.Status, resp.URL)
	}
	if cb, _ := url.Parse(resp.URL); cb.Query().Get("code") == "" || cb.Query().Get("iss") != issuer || cb.Query().Get("state") != q.Get("state") {
		t.Errorf("callback %s: want a code, the request's state and iss=%s (RFC 9207)", resp.URL, issuer)
	}
	waitUntil(t, ctx, "the callback is over", `!document.getElementById("sesion").hidden || !document.getElementById("error").hidden`)
	first := pageState(t, ctx)
	if first.Error != "" || !first.LoggedIn {
		t.Fatalf("the callback failed: %s", first.Error)
	}
	if first.User != devcreds.DevAccount || first.Expires == "" || first.URL != base+"/example/" {
		t.Errorf("logged in: user %q, expiry %q, at %s; want %q, a time, and no code in the address", first.User, first.Expires, first.URL, devcreds.DevAccount)
	}
	if first.Access == "" || first.Refresh == "" || first.IDToken == "" {
		t.Fatalf("tokens kept: access %t, refresh %t, id %t; want all three", first.Access != "", first.Refresh != "", first.IDToken != "")
	}

	// GetToken with the access token.
	if st := press(t, ctx, "gettoken", "gettoken"); st.HTTP != "200" {
		t.Errorf("GetToken: %s %s, want 200", st.HTTP, st.Result)
	}

	// Renovar: new tokens, and GetToken takes the new access token.
	renewed := press(t, ctx, "renovar", "renovar")
	if renewed.Access == first.Access || renewed.Refresh == first.Refresh || renewed.Access == "" || renewed.Refresh == "" {
		t.Errorf("Renovar did not rotate: access changed %t, refresh changed %t", renewed.Access != first.Access, renewed.Refresh != first.Refresh)
	}
	if st := press(t, ctx, "gettoken", "gettoken"); st.HTTP != "200" || st.Access != renewed.Access {
		t.Errorf("GetToken after Renovar: %s %s, want 200 with the new token", st.HTTP, st.Result)
	}

	// The access token at its expiry: the page renews it (rotation)
	// before it calls GetToken, and the person stays logged in. login's
	// clock cannot move under a real browser, so the page's record of the
	// expiry moves instead (and #resultado is cleared, so that press waits
	// for this call and not the last one).
	evaluate[bool](t, ctx, `(() => {
		const s = JSON.parse(sessionStorage.getItem("sesion"));
		s.expires = Date.now();
		sessionStorage.setItem("sesion", JSON.stringify(s));
		delete document.getElementById("resultado").dataset.accion;
		return true;
	})()`)
	expired := renewed
	renewed = press(t, ctx, "gettoken", "gettoken")
	if renewed.HTTP != "200" || !renewed.LoggedIn || renewed.Access == expired.Access || renewed.Refresh == expired.Refresh {
		t.Errorf("GetToken at the access token's expiry: %s %s, logged in %t, access renewed %t, refresh rotated %t; want 200 after a renewal",
			renewed.HTTP, renewed.Result, renewed.LoggedIn, renewed.Access != expired.Access, renewed.Refresh != expired.Refresh)
	}

	// Salir: through login's end-session endpoint, back to the example.
	resp = navigation(t, ctx, "Salir", chromedp.Click(chromedp.ID("salir")))
	if resp.URL != base+"/example/" || resp.Status != http.StatusOK {
		t.Errorf("Salir ended at %d %s, want the example's page", resp.Status, resp.URL)
	}
	waitUntil(t, ctx, "the example shows it logged out", `document.getElementById("estado").textContent === "Sesión cerrada."`)
	if st := pageState(t, ctx); !st.Anonymous || st.LoggedIn || st.Access != "" || st.Refresh != "" {
		t.Errorf("after Salir: %+v; want Entrar and no tokens kept", st)
	}

	// Afterwards, with plain HTTP: the refresh token is refused, and so is
	// the last access token.
	status, body := post(t, issuer+"/token", "application/x-www-form-urlencoded", url.Values{
		"grant_type": {"refresh_token"}, "client_id": {devcreds.DevClient}, "refresh_token": {renewed.Refresh},
	}.Encode())
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("refresh after Salir: %d %v, want 400 invalid_grant", status, body)
	}
	req, _ := http.NewRequest("GET", issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+renewed.Access)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("userinfo with the last access token after Salir: %d, want 401", resp.StatusCode)
	}
}

// checkHostedPage checks login's page as the browser got it: its headers,
// an accessible form, and a Content-Security-Policy that the browser
// enforces (an injected inline script does not run) and that lets the
// page's own inline style apply.
func checkHostedPage(t *testing.T, ctx context.Context, resp *network.Response) {
	t.Helper()
	csp := header(resp, "Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("login page CSP %q lacks %q", csp, want)
		}
	}
	if got := header(resp, "X-Frame-Options"); !strings.EqualFold(got, "DENY") {
		t.Errorf("login page X-Frame-Options %q, want DENY", got)
	}
	type page struct {
		Lang          string `json:"lang"`
		Scripts       int    `json:"scripts"`
		UserLabel     string `json:"user_label"`
		PasswordLabel string `json:"password_label"`
		PasswordType  string `json:"password_type"`
		Alerts        int    `json:"alerts"`
		InjectedRan   bool   `json:"injected_ran"`
		StylesApplied bool   `json:"styles_applied"`
	}
	p := evaluate[page](t, ctx, `(() => {
		const label = (sel) => { const e = document.querySelector(sel); return e && e.labels.length ? e.labels[0].textContent.trim() : ""; };
		const s = document.createElement("script");
		s.textContent = "window.__injected = true";
		document.head.appendChild(s);
		return {
			lang: document.documentElement.lang,
			scripts: document.querySelectorAll("script").length - 1,
			user_label: label('input[autocomplete="username"]'),
			password_label: label('input[autocomplete="current-password"]'),
			password_type: (document.querySelector('input[autocomplete="current-password"]') || {}).type || "",
			alerts: document.querySelectorAll('[role="alert"]').length,
			injected_ran: window.__injected === true,
			styles_applied: [...document.querySelectorAll("style")].every((e) => e.sheet && e.sheet.cssRules.length > 0),
		};
	})()`)
	if p.Lang != "es" || p.Scripts != 0 || p.UserLabel == "" || p.PasswordLabel == "" || p.PasswordType != "password" {
		t.Errorf("login page: %+v; want lang es, no script, labelled user and password fields", p)
	}
	if p.InjectedRan {
		t.Error("an inline script injected in the login page ran: its CSP does not hold")
	}
	if !p.StylesApplied {
		t.Error("the login page's inline style did not apply: its CSP hash does not match")
	}
}

// screenshotLoginPage saves the hosted page as the browser shows it: in
// the test's folder always, and as docs/login.png (the README's) when
// UPDATE_SCREENSHOTS=1.
func screenshotLoginPage(t *testing.T, ctx context.Context) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	out := filepath.Join(t.TempDir(), "login.png")
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("login page screenshot: %s", out)
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		if err := os.WriteFile(filepath.Join("..", "docs", "login.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("updated docs/login.png")
	}
}

// TestLocal_ExampleAndIssuer checks what cmd/local adds around the
// functions, without a browser: the issuer it sets and logs, the example
// page that names it, and RFC 8414's root path for the issuer's metadata.
func TestLocal_ExampleAndIssuer(t *testing.T) {
	s, _, _ := freshCheckout(t)
	issuer := s.URL + "/Login"
	ctx, cancel := context.WithTimeout(context.Background(), startGuard)
	defer cancel()
	m, err := s.Stdout.Line(ctx, regexp.MustCompile(`"message":"login issuer","issuer":"([^"]+)"`))
	if err != nil {
		t.Fatalf("no issuer logged (%v):\n%s", err, s.Stdout)
	}
	if m[1] != issuer {
		t.Errorf("issuer logged %q, want %q", m[1], issuer)
	}

	if resp, _ := send(t, s.URL+"/example/", "text/plain", ""); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /example/: %d, want 405", resp.StatusCode)
	}
	get, err := http.Get(s.URL + "/example/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if get.StatusCode != 200 || !strings.Contains(string(page), `<meta name="impo-issuer" content="`+issuer+`">`) {
		t.Errorf("GET /example/: %d, want the page naming the issuer %s:\n%s", get.StatusCode, issuer, page)
	}
	if csp := get.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("example page CSP %q", csp)
	}

	// The root metadata path reaches login (whatever login answers there),
	// not cmd/local's 404.
	md, err := http.Get(s.URL + "/.well-known/oauth-authorization-server/Login")
	if err != nil {
		t.Fatal(err)
	}
	var problem map[string]any
	json.NewDecoder(md.Body).Decode(&problem)
	md.Body.Close()
	if md.StatusCode == http.StatusNotFound {
		t.Errorf("/.well-known/oauth-authorization-server/Login: 404 %v, want login's metadata", problem)
	}
}
