// Package tests holds end-to-end tests: they build cmd/local and cmd/admin,
// run them as separate processes, and drive them over HTTP with standard
// clients, as a caller would.
package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/internal/emulators"
	"impo.com.uy/copetes/backend/internal/testbuf"
)

var bin string // folder of the built commands

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "impo-e2e-")
	if err != nil {
		panic(err)
	}
	bin = dir
	for _, c := range []string{"local", "admin"} {
		build := exec.Command("go", "build", "-o", filepath.Join(bin, c), "../cmd/"+c)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", c, ":", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	emulators.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// names counts the names uniqueName gave out.
var names atomic.Int64

// uniqueName names what a test creates on an emulator (topics, a
// Firestore collection), which outlives the test: a second run in the
// same process (go test -count=2) must start from nothing.
func uniqueName(t *testing.T) string {
	return fmt.Sprintf("%s-%d", strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()), names.Add(1))
}

// localServer is a running cmd/local process.
type localServer struct {
	URL    string
	Stdout *testbuf.Buffer // the log: one JSON object per line
	Stderr *testbuf.Buffer // what a person at the terminal sees

	cmd    *exec.Cmd
	copied sync.WaitGroup // the copies of stdout and stderr into the buffers
	stop   sync.Once
}

// startGuard bounds each wait for a process to start or stop. It only
// turns a hung process into a failure; every test waits for the output
// or the answer it needs, never for a duration.
const startGuard = 2 * time.Minute

var (
	addrRE  = regexp.MustCompile(`"message":"serving functions","address":"(http://[^"]+)"`)
	readyRE = regexp.MustCompile(`^Funciones en `) // the terminal's ready line, after the dev password
)

// oneIssuer is for cmd/local processes that stand for instances of one
// deployment: they share its issuer, so that a token one of them issues
// the others accept. Left unset, each would take its own address.
const oneIssuer = "LOGIN_ISSUER=http://127.0.0.1:8080/Login"

// startLocal runs cmd/local with env on a free port and waits until it
// serves and has printed its terminal lines (the dev password first). The
// process is stopped when the test ends.
func startLocal(t *testing.T, env ...string) *localServer {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "local"))
	cmd.Env = append(os.Environ(), "PORT=0", "GOOGLE_CLOUD_PROJECT=", "SECRETS_SOURCE=", "FUNCTION_TARGET=")
	cmd.Env = append(cmd.Env, env...)
	s := &localServer{Stdout: &testbuf.Buffer{}, Stderr: &testbuf.Buffer{}, cmd: cmd}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from io.Reader
		to   *testbuf.Buffer
	}{{stdout, s.Stdout}, {stderr, s.Stderr}} {
		s.copied.Go(func() {
			io.Copy(c.to, c.from)
			c.to.Close() // the process closed it: a wait for more fails at once
		})
	}
	t.Cleanup(func() { s.Stop(t) })

	ctx, cancel := context.WithTimeout(context.Background(), startGuard)
	defer cancel()
	m, err := s.Stdout.Line(ctx, addrRE)
	if err == nil {
		_, err = s.Stderr.Line(ctx, readyRE)
	}
	if err != nil {
		t.Fatalf("cmd/local did not start (%v):\n%s\n%s", err, s.Stdout, s.Stderr)
	}
	s.URL = m[1]
	return s
}

// Stop interrupts the process and returns once it has exited and all it
// wrote is in Stdout and Stderr, for a test that checks its whole output.
func (s *localServer) Stop(t *testing.T) {
	t.Helper()
	s.stop.Do(func() {
		s.cmd.Process.Signal(os.Interrupt)
		copied := make(chan struct{})
		go func() { s.copied.Wait(); close(copied) }()
		select {
		case <-copied:
		case <-time.After(startGuard):
			t.Errorf("cmd/local did not stop on an interrupt:\n%s", s.Stderr)
			s.cmd.Process.Kill()
			<-copied
		}
		s.cmd.Wait() // after the copies: Wait closes the pipes
	})
}

// startTarget runs cmd/local with FUNCTION_TARGET=target, which serves
// that one function at "/" through the Functions Framework, and returns
// its base URL once it answers.
func startTarget(t *testing.T, target string, env ...string) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(lis.Addr().(*net.TCPAddr).Port)
	lis.Close()
	cmd := exec.Command(filepath.Join(bin, "local"))
	cmd.Env = append(os.Environ(), "PORT="+port, "GOOGLE_CLOUD_PROJECT=", "SECRETS_SOURCE=", "FUNCTION_TARGET="+target)
	cmd.Env = append(cmd.Env, env...)
	out := &testbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	// The Functions Framework logs nothing once it listens: ask until it
	// answers, or until the process gives up.
	base := "http://127.0.0.1:" + port
	guard := time.After(startGuard)
	for {
		if resp, err := http.Get(base + "/"); err == nil {
			resp.Body.Close()
			return base
		}
		select {
		case <-exited:
			t.Fatalf("FUNCTION_TARGET=%s exited:\n%s", target, out)
		case <-guard:
			t.Fatalf("FUNCTION_TARGET=%s did not answer:\n%s", target, out)
		case <-time.After(50 * time.Millisecond): // between attempts; no outcome depends on it
		}
	}
}

// runAdmin runs cmd/admin with stdin and env, returning its stdout.
func runAdmin(t *testing.T, stdin string, env []string, args ...string) string {
	t.Helper()
	out, _ := runAdminStreams(t, stdin, env, args...)
	return out
}

// runAdminStreams is runAdmin that also returns what the operator reads on
// standard error.
func runAdminStreams(t *testing.T, stdin string, env []string, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "admin"), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errw bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errw
	if err := cmd.Run(); err != nil {
		t.Fatalf("admin %v: %v\n%s", args, err, errw.String())
	}
	return out.String(), errw.String()
}

// send POSTs body with contentType and header pairs, and returns the
// response (its body already read and closed) and the body's bytes.
func send(t *testing.T, url, contentType, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), "POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

// post sends body with contentType and header pairs; it returns the
// status and the decoded JSON body (nil when empty).
func post(t *testing.T, url, contentType, body string, header ...string) (int, map[string]any) {
	t.Helper()
	resp, data := send(t, url, contentType, body, header...)
	var m map[string]any
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("POST %s: %d %q is not JSON", url, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, m
}
