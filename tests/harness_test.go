// Package tests holds end-to-end tests: they build cmd/local and cmd/admin,
// run them as separate processes, and drive them over HTTP with standard
// clients, as a caller would.
package tests

import (
	"bufio"
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
	"testing"
	"time"

	"impo.com.uy/copetes/backend/internal/emulators"
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

// output collects everything a process writes, for the no-secrets check.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// localServer is a running cmd/local process.
type localServer struct {
	URL    string
	Stdout *output // the log: one JSON object per line
	Stderr *output // what a person at the terminal sees
}

var addrRE = regexp.MustCompile(`"message":"serving functions","address":"(http://[^"]+)"`)

// startLocal runs cmd/local with env on a free port and waits until it
// serves. The process is stopped when the test ends.
func startLocal(t *testing.T, env ...string) *localServer {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "local"))
	cmd.Env = append(os.Environ(), "PORT=0", "GOOGLE_CLOUD_PROJECT=", "SECRETS_SOURCE=", "FUNCTION_TARGET=")
	cmd.Env = append(cmd.Env, env...)
	s := &localServer{Stdout: &output{}, Stderr: &output{}}
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = s.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.Stdout.Write([]byte(line + "\n"))
			if m := addrRE.FindStringSubmatch(line); m != nil {
				ready <- m[1]
			}
		}
	}()
	select {
	case s.URL = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("cmd/local did not start:\n%s\n%s", s.Stdout, s.Stderr)
	}
	return s
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
	out := &output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	base := "http://127.0.0.1:" + port
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err := http.Get(base + "/"); err == nil {
			resp.Body.Close()
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("FUNCTION_TARGET=%s did not start:\n%s", target, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runAdmin runs cmd/admin with stdin and env, returning its stdout.
func runAdmin(t *testing.T, stdin string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "admin"), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errw bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errw
	if err := cmd.Run(); err != nil {
		t.Fatalf("admin %v: %v\n%s", args, err, errw.String())
	}
	return out.String()
}

// post sends body with contentType and header pairs; it returns the
// status and the decoded JSON body (nil when empty).
func post(t *testing.T, url, contentType, body string, header ...string) (int, map[string]any) {
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
	var m map[string]any
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("POST %s: %d %q is not JSON", url, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, m
}
