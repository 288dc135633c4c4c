package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/internal/testbuf"
)

// drainProcess is cmd/local started for a drain test, in either mode,
// whose exit the test waits for.
type drainProcess struct {
	token    string          // login's token endpoint
	password string          // the dev account's, printed at start
	log      *testbuf.Buffer // stdout: the JSON log
	term     *testbuf.Buffer // stderr
	cmd      *exec.Cmd
	exited   chan struct{} // closed once the process has exited and its output is in
	exitErr  error
}

// startDrainProcess runs cmd/local on fresh dev credentials: all functions
// on an http.Server of its own when target is empty, else that one
// function through the Functions Framework, as in production.
func startDrainProcess(t *testing.T, target string, env ...string) *drainProcess {
	t.Helper()
	port := "0"
	if target != "" {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = strconv.Itoa(lis.Addr().(*net.TCPAddr).Port)
		lis.Close()
	}
	cmd := exec.Command(filepath.Join(bin, "local"))
	cmd.Env = append(os.Environ(), "PORT="+port, "GOOGLE_CLOUD_PROJECT=", "SECRETS_SOURCE=", "STATE_STORE=",
		"FUNCTION_TARGET="+target, "CREDENTIALS_DIR="+t.TempDir())
	cmd.Env = append(cmd.Env, env...)
	p := &drainProcess{log: &testbuf.Buffer{}, term: &testbuf.Buffer{}, cmd: cmd, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.term
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.exitErr = cmd.Wait() // returns once the output is copied
		p.log.Close()
		p.term.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})

	ctx, cancel := context.WithTimeout(context.Background(), startGuard)
	defer cancel()
	m, err := p.term.Line(ctx, devPasswordRE)
	if err != nil {
		t.Fatalf("no dev password printed (%v):\n%s\n%s", err, p.log, p.term)
	}
	p.password = m[1]
	if target == "" {
		m, err := p.log.Line(ctx, addrRE)
		if err != nil {
			t.Fatalf("cmd/local did not start (%v):\n%s\n%s", err, p.log, p.term)
		}
		p.token = m[1] + "/Login/token"
		return p
	}
	// The Functions Framework logs nothing once it listens: ask until it
	// answers. The first answer also means entrypoint watches SIGTERM.
	base := "http://127.0.0.1:" + port
	for {
		if resp, err := http.Get(base + "/jwks"); err == nil {
			resp.Body.Close()
			p.token = base + "/token"
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("FUNCTION_TARGET=%s exited:\n%s\n%s", target, p.log, p.term)
		case <-ctx.Done():
			t.Fatalf("FUNCTION_TARGET=%s did not answer:\n%s\n%s", target, p.log, p.term)
		case <-time.After(50 * time.Millisecond): // between attempts; no outcome depends on it
		}
	}
}

// terminate sends SIGTERM, as Cloud Run does, and returns the "draining
// started" log line once the process has written it.
func (p *drainProcess) terminate(t *testing.T) map[string]any {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startGuard)
	defer cancel()
	m, err := p.log.Line(ctx, regexp.MustCompile(`(\{.*"message":"draining started".*\})`))
	if err != nil {
		t.Fatalf("no \"draining started\" after SIGTERM (%v):\n%s\n%s", err, p.log, p.term)
	}
	var line map[string]any
	json.Unmarshal([]byte(m[1]), &line)
	return line
}

// wait returns once the process has exited, with its exit error.
func (p *drainProcess) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.exitErr
	case <-time.After(startGuard):
		t.Fatalf("still running %s after SIGTERM:\n%s", startGuard, p.log)
		return nil
	}
}

// heldLogin is a login whose body the test sends when it chooses, on a
// connection of its own.
type heldLogin struct {
	conn net.Conn
	r    *bufio.Reader
	req  *http.Request // for reading the response
	body []byte
	sent int
}

// holdLogin sends a login's headers and returns once the request is in
// its handler: it asks for "100 Continue", which Go's server sends only
// when the handler first reads the body. From then on the request is in
// flight, and waits for the body the test sends. padding blank spaces in
// the JSON make the body as large as a slow upload should be.
func holdLogin(t *testing.T, token, password string, padding int) *heldLogin {
	t.Helper()
	u, err := url.Parse(token)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Appendf(nil, `{"client_id":"impo-web-dev","username":"dev",%s"password":%q}`, strings.Repeat(" ", padding), password)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(startGuard)) // a guard against a hung server, never a wait
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		u.Path, u.Host, len(body))
	h := &heldLogin{conn: conn, r: bufio.NewReader(conn), body: body}
	h.req, _ = http.NewRequest("POST", token, nil)
	status, err := h.r.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 100 ") {
		t.Fatalf("the login's headers got %q (%v), want 100 Continue", status, err)
	}
	if blank, err := h.r.ReadString('\n'); err != nil || blank != "\r\n" {
		t.Fatalf("after 100 Continue: %q (%v)", blank, err)
	}
	return h
}

// send writes the next n bytes of the body (all that is left when n is
// larger), in writes of at most chunk bytes: a trickle, as from a slow
// client.
func (h *heldLogin) send(t *testing.T, n, chunk int) {
	t.Helper()
	end := min(h.sent+n, len(h.body))
	for h.sent < end {
		next := min(h.sent+chunk, end)
		if _, err := h.conn.Write(h.body[h.sent:next]); err != nil {
			t.Fatalf("sending the body, %d of %d bytes sent: %v", h.sent, len(h.body), err)
		}
		h.sent = next
	}
}

// answer reads the whole response: a cut one is an error.
func (h *heldLogin) answer() (*http.Response, []byte, error) {
	resp, err := http.ReadResponse(h.r, h.req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// TestDrain_InFlightRequestsGetTheirResponses stops the real binary, in
// both modes, while a slow upload and several logins are in flight: every
// one of them must get its whole answer, a request that comes after
// SIGTERM must be refused (never taken and then cut), and the process
// must exit with status 0 once they are done. If it failed, Cloud Run
// replacing an instance would cut the requests it was serving.
func TestDrain_InFlightRequestsGetTheirResponses(t *testing.T) {
	for _, mode := range []struct{ name, target string }{
		{"AllFunctions", ""},
		{"FunctionTarget", "Login"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			p := startDrainProcess(t, mode.target, "DRAIN_GRACE=9s")

			// A slow upload, a third of it in when SIGTERM comes, and
			// logins that lack their last byte: all in their handlers.
			slow := holdLogin(t, p.token, p.password, 12<<10)
			slow.send(t, len(slow.body)/3, 512)
			var logins []*heldLogin
			for range 4 {
				h := holdLogin(t, p.token, p.password, 0)
				h.send(t, len(h.body)-1, len(h.body))
				logins = append(logins, h)
			}

			started := p.terminate(t)
			if n, _ := started["in_flight"].(float64); n < 5 {
				t.Errorf("draining started with %v in flight, want the 5 held requests: %v", started["in_flight"], started)
			}
			checkRefused(t, p.token, p.password)

			// The rest of the upload trickles in; the logins complete
			// together and hash during the drain.
			slow.send(t, len(slow.body), 256)
			for _, h := range logins {
				h.send(t, 1, 1)
			}
			for i, h := range append([]*heldLogin{slow}, logins...) {
				resp, body, err := h.answer()
				if err != nil {
					t.Errorf("request %d (0 is the slow upload) was cut: %v", i, err)
					continue
				}
				var tok struct {
					AccessToken string `json:"access_token"`
				}
				if resp.StatusCode != 200 || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
					t.Errorf("request %d (0 is the slow upload): %d %s, want a session token", i, resp.StatusCode, body)
				}
				if !resp.Close {
					t.Errorf("request %d: the answer does not say Connection: close; the client would reuse a dying connection", i)
				}
			}

			if err := p.wait(t); err != nil {
				t.Errorf("exit after the drain: %v, want status 0", err)
			}
			if !strings.Contains(p.log.String(), `"message":"draining finished"`) || strings.Contains(p.log.String(), "draining cut short") {
				t.Errorf("the log does not say that the drain finished with nothing cut:\n%s", p.log)
			}
		})
	}
}

// checkRefused sends a login after SIGTERM: the connection must be
// refused, or the answer must be a whole 503 with Retry-After.
func checkRefused(t *testing.T, token, password string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Post(token, "application/json",
		strings.NewReader(`{"client_id":"impo-web-dev","username":"dev","password":"`+password+`"}`))
	if err != nil {
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("a login after SIGTERM: %v, want the connection refused or a 503", err)
		}
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a login after SIGTERM: %d, Retry-After %q, %q (%v); want a whole 503 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"), body, err)
	}
}

// TestDrain_GraceRunsOutCutsAndSaysWhat holds a login that never
// completes: the process must still exit once DRAIN_GRACE has run out
// (before Cloud Run's SIGKILL), with status 0, and log what it cut.
func TestDrain_GraceRunsOutCutsAndSaysWhat(t *testing.T) {
	for _, mode := range []struct{ name, target string }{
		{"AllFunctions", ""},
		{"FunctionTarget", "Login"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			p := startDrainProcess(t, mode.target, "DRAIN_GRACE=1s")
			holdLogin(t, p.token, p.password, 0)
			p.terminate(t)
			if err := p.wait(t); err != nil {
				t.Errorf("exit after the grace: %v, want status 0", err)
			}
			if !regexp.MustCompile(`"message":"draining cut short".*"by_function":\{"Login":1\}`).MatchString(p.log.String()) {
				t.Errorf("the log does not say that one Login request was cut:\n%s", p.log)
			}
		})
	}
}

func TestDrain_BadGraceStopsTheStart(t *testing.T) {
	cmd := exec.Command(filepath.Join(bin, "local"))
	cmd.Env = append(os.Environ(), "PORT=0", "GOOGLE_CLOUD_PROJECT=", "SECRETS_SOURCE=", "FUNCTION_TARGET=",
		"CREDENTIALS_DIR="+t.TempDir(), "DRAIN_GRACE=30s")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "DRAIN_GRACE") {
		t.Errorf("DRAIN_GRACE=30s (past Cloud Run's 10 s): %v\n%s\nwant a failed start that names the variable", err, out)
	}
}
