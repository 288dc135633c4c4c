package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readmeMarker precedes, in README.md, every block this test runs.
const readmeMarker = "<!-- probado: tests/readme_test.go -->"

// The walkthrough's placeholders, replaced by what the fresh server printed.
const (
	readmeURL      = "http://127.0.0.1:8080"
	readmePassword = "<contraseña impresa>"
)

// readmeBlock is one marked code block of the README.
type readmeBlock struct {
	line int    // of the opening fence, for messages
	lang string // "sh" or "go"
	code string
}

// expectations returns the block's "# prefix ..." lines as patterns in
// which "…" stands for any text on one line.
func (b readmeBlock) expectations(prefix string) []*regexp.Regexp {
	var res []*regexp.Regexp
	for l := range strings.SplitSeq(b.code, "\n") {
		want, ok := strings.CutPrefix(strings.TrimSpace(l), "# "+prefix+" ")
		if !ok {
			continue
		}
		parts := strings.Split(strings.TrimSpace(want), "…")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		res = append(res, regexp.MustCompile(strings.Join(parts, ".*?")))
	}
	return res
}

// readmeBlocks returns the marked blocks of the README, in order. A marker
// that is not followed by a fenced block is an error: it would silently
// drop a step from the test.
func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var blocks []readmeBlock
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != readmeMarker {
			continue
		}
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		var lang string
		if j < len(lines) {
			lang, _ = strings.CutPrefix(strings.TrimSpace(lines[j]), "```")
		}
		if lang != "sh" && lang != "go" {
			t.Fatalf("README.md:%d: %s is not followed by a ```sh or ```go block", i+1, readmeMarker)
		}
		indent := lines[j][:len(lines[j])-len(strings.TrimLeft(lines[j], " "))]
		b := readmeBlock{line: j + 1, lang: lang}
		var code []string
		for j++; j < len(lines) && strings.TrimSpace(lines[j]) != "```"; j++ {
			code = append(code, strings.TrimPrefix(lines[j], indent))
		}
		if j == len(lines) {
			t.Fatalf("README.md:%d: the block never closes", b.line)
		}
		b.code = strings.Join(code, "\n") + "\n"
		blocks = append(blocks, b)
		i = j
	}
	return blocks
}

// readmeOutput collects a stream and lets a test wait for what it expects
// to read in it.
type readmeOutput struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	more chan struct{} // closed and replaced on every write
}

func newReadmeOutput() *readmeOutput { return &readmeOutput{more: make(chan struct{})} }

func (o *readmeOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	close(o.more)
	o.more = make(chan struct{})
	return o.buf.Write(p)
}

func (o *readmeOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor returns the first match of re, waiting for more output until
// the deadline; nil when it never came.
func (o *readmeOutput) waitFor(re *regexp.Regexp, deadline <-chan time.Time) []string {
	for {
		o.mu.Lock()
		m, more := re.FindStringSubmatch(o.buf.String()), o.more
		o.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-more:
		case <-deadline:
			return nil
		}
	}
}

// readmeServer is cmd/local started the way the README's newcomer starts
// it: in an empty checkout, so that it creates and prints its credentials.
type readmeServer struct {
	URL, Password  string
	Stdout, Stderr *readmeOutput
	cmd            *exec.Cmd
	exited         chan struct{} // closed when the process has exited
	exitErr        error         // its Wait error, once exited is closed
}

var (
	readmeAddrRE     = regexp.MustCompile(`"message":"serving functions",.*"address":"(http://[^"]+)"`)
	readmePasswordRE = regexp.MustCompile(`usuario "dev", contraseña (\S+)`)
)

// startReadmeServer runs cmd/local in dir on a free port and returns once
// it has logged its address and printed the dev password (the two come on
// different streams, so it waits for both).
func startReadmeServer(t *testing.T, dir string) *readmeServer {
	t.Helper()
	s := &readmeServer{Stdout: newReadmeOutput(), Stderr: newReadmeOutput(), exited: make(chan struct{})}
	s.cmd = exec.Command(filepath.Join(bin, "local"))
	s.cmd.Dir = dir
	s.cmd.Env = append(os.Environ(), "PORT=0", "CREDENTIALS_DIR="+filepath.Join(dir, "credenciales"),
		"GOOGLE_CLOUD_PROJECT=", "SECRETS_SOURCE=", "FUNCTION_TARGET=", "GETTOKEN_POLICY=", "GETTOKEN_POLICY_FILE=", "GETTOKEN_SOURCE=")
	s.cmd.Stdout, s.cmd.Stderr = s.Stdout, s.Stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.exitErr = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
	deadline := time.After(60 * time.Second) // a failure bound, never a wait for success
	addr := s.Stdout.waitFor(readmeAddrRE, deadline)
	pw := s.Stderr.waitFor(readmePasswordRE, deadline)
	if addr == nil || pw == nil {
		t.Fatalf("cmd/local did not log its address and print the dev password:\nstdout:\n%s\nstderr:\n%s", s.Stdout, s.Stderr)
	}
	s.URL, s.Password = addr[1], pw[1]
	return s
}

// stop sends SIGTERM, as the README says to stop the server, and checks
// that it exits cleanly.
func (s *readmeServer) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.exitErr != nil {
			t.Errorf("cmd/local after SIGTERM: %v, want exit status 0 (the README says SIGTERM stops it cleanly)", s.exitErr)
		}
	case <-time.After(30 * time.Second):
		t.Error("cmd/local still runs 30 s after SIGTERM")
	}
}

// readmeScript joins the walkthrough's shell blocks into one bash script
// that marks where each block's output starts and, at the end, prints the
// variables the Go example needs.
func readmeScript(t *testing.T, blocks []readmeBlock, url, password string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(`set -euo pipefail
# The README runs "go run ./cmd/admin" from the repository's root; here the
# same command comes prebuilt from this checkout, and runs in the temporary
# checkout whose credenciales/ the server reads.
go() {
  if [ "$#" -ge 2 ] && [ "$1" = run ] && [ "$2" = ./cmd/admin ]; then
    shift 2
    "$README_ADMIN" "$@"
    return
  fi
  echo "readme_test: the walkthrough may only run 'go run ./cmd/admin', not: go $*" >&2
  return 127
}
`)
	sawURL, sawPassword := false, false
	for i, blk := range blocks {
		code := blk.code
		sawURL = sawURL || strings.Contains(code, readmeURL)
		sawPassword = sawPassword || strings.Contains(code, readmePassword)
		code = strings.ReplaceAll(code, readmeURL, url)
		code = strings.ReplaceAll(code, readmePassword, password)
		fmt.Fprintf(&b, "echo '@@readme-block %d@@'\n%s", i, code)
	}
	if !sawURL || !sawPassword {
		t.Fatalf("the walkthrough no longer holds the placeholders %q and %q that this test replaces", readmeURL, readmePassword)
	}
	b.WriteString("echo '@@readme-end@@'\nprintf '%s\\n' \"${SECRETO-}\"\n")
	return b.String()
}

// TestReadme_WalkthroughRunsAsWritten runs the README's marked shell blocks
// in order, in one bash session, against a fresh cmd/local, and checks
// every "# responde:" line against what the block printed and every
// "# el log muestra:" line against the server's log. Then it builds the
// README's Go program and runs it against the same server. If it fails,
// a newcomer following the README top to bottom would fail at that step.
func TestReadme_WalkthroughRunsAsWritten(t *testing.T) {
	var sh []readmeBlock
	var goBlocks []readmeBlock
	for _, b := range readmeBlocks(t) {
		if b.lang == "go" {
			goBlocks = append(goBlocks, b)
		} else {
			sh = append(sh, b)
		}
	}
	if len(sh) < 8 || len(goBlocks) != 1 {
		t.Fatalf("README.md marks %d shell blocks and %d Go blocks with %s; want the walkthrough (8 or more) and one Go program",
			len(sh), len(goBlocks), readmeMarker)
	}

	checkout := t.TempDir() // stands for the repository's root: the server and the walkthrough run here
	srv := startReadmeServer(t, checkout)

	script := filepath.Join(t.TempDir(), "walkthrough.sh")
	if err := os.WriteFile(script, []byte(readmeScript(t, sh, srv.URL, srv.Password)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The context only bounds a hung step; every wait in the README polls
	// for what it expects and gives up on its own.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bash := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", script)
	bash.Dir = checkout
	bash.Env = append(os.Environ(), "README_ADMIN="+filepath.Join(bin, "admin"),
		"CREDENTIALS_DIR="+filepath.Join(checkout, "credenciales"))
	var stdout, stderr bytes.Buffer
	bash.Stdout, bash.Stderr = &stdout, &stderr
	runErr := bash.Run()

	// Split the output by block: outputs[i] is what block i printed.
	out := stdout.String()
	outputs := make([]string, len(sh))
	reached := -1
	for i := range sh {
		start := strings.Index(out, fmt.Sprintf("@@readme-block %d@@\n", i))
		if start < 0 {
			break
		}
		reached = i
		rest := out[start:]
		rest = rest[strings.Index(rest, "\n")+1:]
		if end := strings.Index(rest, "@@readme-"); end >= 0 {
			rest = rest[:end]
		}
		outputs[i] = rest
	}
	if runErr != nil {
		blk := sh[max(reached, 0)]
		t.Fatalf("the walkthrough stopped in the block at README.md:%d (%v):\n%s\noutput:\n%s\nstderr:\n%s\nserver log:\n%s",
			blk.line, runErr, blk.code, outputs[max(reached, 0)], stderr.String(), srv.Stdout)
	}
	_, tail, _ := strings.Cut(out, "@@readme-end@@\n")
	secret := strings.TrimSpace(tail)

	for i, blk := range sh {
		// The expected lines name the README's address too: the server's.
		blk.code = strings.ReplaceAll(blk.code, readmeURL, srv.URL)
		pos := 0
		for _, re := range blk.expectations("responde:") {
			loc := re.FindStringIndex(outputs[i][pos:])
			if loc == nil {
				t.Errorf("README.md:%d: the block printed nothing matching %q after what it had shown:\n%s\noutput:\n%s",
					blk.line, re, blk.code, outputs[i])
				break
			}
			pos += loc[1]
		}
	}
	// The log lines a block promises were written before its response was
	// sent; the pipe may deliver them a little later, so wait for them.
	logDeadline := time.After(10 * time.Second)
	for _, blk := range sh {
		for _, re := range blk.expectations("el log muestra:") {
			if srv.Stdout.waitFor(re, logDeadline) == nil {
				t.Errorf("README.md:%d: the server's log has no line matching %q:\n%s", blk.line, re, srv.Stdout)
			}
		}
	}

	if secret == "" {
		t.Error("the walkthrough set no SECRETO for the service account")
	} else {
		runReadmeGoProgram(t, goBlocks[0], srv.URL, secret)
	}

	srv.stop(t)
	checkReadmeServerStreams(t, srv, secret)
}

// runReadmeGoProgram builds the README's Go program as a newcomer would, in
// a module of its own that requires golang.org/x/oauth2 (offline, at this
// module's version), and runs it against the walkthrough's server.
func runReadmeGoProgram(t *testing.T, blk readmeBlock, url, secret string) {
	t.Helper()
	dir := t.TempDir()
	version, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "golang.org/x/oauth2").Output()
	if err != nil {
		t.Fatalf("go list golang.org/x/oauth2: %v", err)
	}
	gomod := fmt.Sprintf("module ejemplo\n\ngo 1.26\n\nrequire golang.org/x/oauth2 %s\n", strings.TrimSpace(string(version)))
	sum, err := os.ReadFile("../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"go.mod": []byte(gomod), "go.sum": sum, "main.go": []byte(blk.code)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	goEnv := append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	exe := filepath.Join(dir, "ejemplo")
	for _, args := range [][]string{{"vet", "."}, {"build", "-o", exe, "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = dir, goEnv
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("README.md:%d: the Go program does not pass go %s: %v\n%s", blk.line, args[0], err, out)
		}
	}
	run := exec.Command(exe)
	run.Env = append(os.Environ(), "LOGIN="+url+"/Login", "GETTOKEN="+url+"/GetToken", "SECRETO="+secret)
	out, err := run.CombinedOutput()
	if err != nil || !regexp.MustCompile(`^token de Google Cloud hasta 20\d\d-`).Match(out) {
		t.Errorf("README.md:%d: the Go program against the local run: %v\n%s", blk.line, err, out)
	}
}

// checkReadmeServerStreams holds the README to what it says of the
// server's output: the log is JSON lines on stdout; the dev password is on
// stderr and never in the log, nor is the service's secret.
func checkReadmeServerStreams(t *testing.T, srv *readmeServer, secret string) {
	t.Helper()
	log := srv.Stdout.String()
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var entry struct{ Severity, Message string }
		if err := json.Unmarshal(sc.Bytes(), &entry); err != nil || entry.Severity == "" || entry.Message == "" {
			t.Errorf("a stdout line is not a Cloud Logging JSON entry: %q", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Error(err)
	}
	for what, value := range map[string]string{"the dev password": srv.Password, "the service secret": secret} {
		if value != "" && strings.Contains(log, value) {
			t.Errorf("%s reached the log", what)
		}
	}
}
