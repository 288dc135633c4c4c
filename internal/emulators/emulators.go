// Package emulators starts the official emulators that ship with the
// Google Cloud CLI (Pub/Sub, Firestore) for tests: once per test binary,
// on a free loopback port, stopped by Stop. A missing emulator fails the
// test with what to install; it is never skipped.
package emulators

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/internal/testbuf"
)

// Emulator is a running emulator process.
type Emulator struct {
	Host   string // host:port
	cmd    *exec.Cmd
	log    *testbuf.Buffer // its output, for the error when it does not start
	exited chan struct{}   // closed when the process has ended

	// What Restart needs to start it again on the same port.
	path string
	bin  string
	args []string
}

// startGuard bounds the wait for an emulator to accept connections. Two
// JVMs starting on a loaded machine take long; the bound only turns one
// that hangs into a failure.
const startGuard = 5 * time.Minute

type entry struct {
	once sync.Once
	emu  *Emulator
	err  error
}

var (
	mu      sync.Mutex
	running = map[string]*entry{}
)

// sdkRoot finds the Google Cloud SDK: CLOUDSDK_ROOT, else what gcloud says.
func sdkRoot() (string, error) {
	if root := os.Getenv("CLOUDSDK_ROOT"); root != "" {
		return root, nil
	}
	out, err := exec.Command("gcloud", "info", "--format=value(installation.sdk_root)").Output()
	if err != nil {
		return "", fmt.Errorf("the Google Cloud CLI (gcloud) is needed for the emulators: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Start runs, once per process, the emulator binary at path under the
// SDK's platform/ folder, with the arguments args gives for a host and
// port, and waits until it accepts connections.
func Start(t testing.TB, path string, args func(host string, port int) []string) *Emulator {
	t.Helper()
	return startShared(t, path, args, nil)
}

// startShared is Start, then warm (when not nil) once the emulator
// accepts connections.
func startShared(t testing.TB, path string, args func(host string, port int) []string, warm func(*Emulator) error) *Emulator {
	t.Helper()
	mu.Lock()
	e := running[path]
	if e == nil {
		e = &entry{}
		running[path] = e
	}
	mu.Unlock()
	e.once.Do(func() {
		if e.emu, e.err = start(path, args); e.err == nil && warm != nil {
			e.err = warm(e.emu)
		}
	})
	if e.err != nil {
		t.Fatal(e.err)
	}
	return e.emu
}

func start(path string, args func(string, int) []string) (*Emulator, error) {
	bin, err := binary(path)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := lis.Addr().(*net.TCPAddr).Port
	lis.Close()
	e := &Emulator{Host: "127.0.0.1:" + strconv.Itoa(port), path: path, bin: bin, args: args("127.0.0.1", port)}
	if err := e.launch(); err != nil {
		return nil, err
	}
	return e, nil
}

// binary is the emulator at path under the SDK's platform/ folder, or an
// error that says what to install.
func binary(path string) (string, error) {
	root, err := sdkRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "platform", path)
	if _, err := os.Stat(bin); err != nil {
		component := strings.Split(path, "/")[0]
		return "", fmt.Errorf("emulator %s is not installed (%v): install the Google Cloud CLI component %s (gcloud components install, or Debian's google-cloud-cli-%s) and Java",
			bin, err, component, component)
	}
	return bin, nil
}

// launch runs the process on e.Host and waits until it accepts
// connections.
func (e *Emulator) launch() error {
	e.log, e.exited = &testbuf.Buffer{}, make(chan struct{})
	e.cmd = exec.Command(e.bin, e.args...)
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its JVM stops with it
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	if err := e.cmd.Start(); err != nil {
		return err
	}
	exited := e.exited
	cmd := e.cmd
	go func() { cmd.Wait(); close(exited) }()
	// It says nothing machine-readable when it is ready: try to connect
	// until it accepts, or until it has exited.
	guard := time.After(startGuard)
	for {
		if c, err := net.Dial("tcp", e.Host); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("emulator %s exited before it accepted connections:\n%s", e.path, e.log)
		case <-guard:
			e.stop()
			return fmt.Errorf("emulator %s did not accept connections in %s:\n%s", e.path, startGuard, e.log)
		case <-time.After(200 * time.Millisecond): // between attempts; no outcome depends on it
		}
	}
}

func (e *Emulator) stop() {
	syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
	<-e.exited
}

// Stop ends every emulator this process started. Call it from TestMain
// after m.Run.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	for path, e := range running {
		if e.emu != nil {
			e.emu.stop()
		}
		delete(running, path)
	}
}

// PubSub returns the Pub/Sub emulator.
func PubSub(t testing.TB) *Emulator {
	return Start(t, "pubsub-emulator/bin/cloud-pubsub-emulator", func(host string, port int) []string {
		return []string{"--host=" + host, "--port=" + strconv.Itoa(port)}
	})
}

// Firestore returns the Firestore emulator (Native mode), warmed up.
func Firestore(t testing.TB) *Emulator {
	t.Helper()
	return startShared(t, firestorePath, firestoreArgs, warmFirestore)
}

const firestorePath = "cloud-firestore-emulator/cloud_firestore_emulator"

func firestoreArgs(host string, port int) []string {
	return []string{"--host=" + host, "--port=" + strconv.Itoa(port)}
}

// warmFirestore reads a document once through the emulator's REST API.
// Accepting connections is not serving: the first read of a fresh
// emulator takes seconds (its JVM loads and compiles the code that
// serves it), longer than a state store's timeout, and would fail the
// first test that happens to make it.
func warmFirestore(e *Emulator) error {
	client := &http.Client{Timeout: startGuard}
	resp, err := client.Get("http://" + e.Host + "/v1/projects/warm-up/databases/(default)/documents/warm-up/warm-up")
	if err != nil {
		e.stop()
		return fmt.Errorf("emulator %s accepted a connection, then did not answer: %v\n%s", e.path, err, e.log)
	}
	resp.Body.Close() // any answer (a 404) is an answer
	return nil
}

// FirestoreOfItsOwn starts a Firestore emulator for t alone, which t may
// Kill and Restart (an outage of the store) without disturbing the
// emulator other tests share. It is stopped when t ends.
func FirestoreOfItsOwn(t testing.TB) *Emulator {
	t.Helper()
	e, err := start(firestorePath, firestoreArgs)
	if err == nil {
		err = warmFirestore(e)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Kill)
	return e
}

// Kill ends the emulator at once (SIGKILL), as a crash would: it closes
// no connection gracefully and keeps no data. Killing one that has ended
// does nothing.
func (e *Emulator) Kill() { e.stop() }

// Restart starts a killed emulator again on the same host and port, empty,
// and returns once it accepts connections. Unlike at its first start, it
// is not warmed up: as after a real restart, its first answers are slow.
func (e *Emulator) Restart(t testing.TB) {
	t.Helper()
	e.stop()
	if err := e.launch(); err != nil {
		t.Fatal(err)
	}
}

// Log is what the emulator has written since it last started.
func (e *Emulator) Log() string { return e.log.String() }
