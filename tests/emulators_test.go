package tests

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The official emulators that ship with the Google Cloud CLI are started
// by the tests that need them, once per test binary, on free loopback
// ports, and stopped by TestMain. A missing emulator fails the test with
// what to install: it is never skipped.

type emulator struct {
	once sync.Once
	host string
	cmd  *exec.Cmd
	err  error
}

var (
	emulatorsMu sync.Mutex
	emulators   = map[string]*emulator{}
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

// startEmulator runs the emulator binary under the SDK's platform/ folder
// (name, e.g. "pubsub-emulator/bin/cloud-pubsub-emulator") with args
// built from the port, and waits until it accepts connections.
func startEmulator(t *testing.T, name string, args func(host string, port int) []string) string {
	t.Helper()
	emulatorsMu.Lock()
	e := emulators[name]
	if e == nil {
		e = &emulator{}
		emulators[name] = e
	}
	emulatorsMu.Unlock()
	e.once.Do(func() {
		root, err := sdkRoot()
		if err != nil {
			e.err = err
			return
		}
		bin := filepath.Join(root, "platform", name)
		if _, err := os.Stat(bin); err != nil {
			e.err = fmt.Errorf("emulator %s is not installed (%v): install it with `gcloud components install` or the Debian package google-cloud-cli-%s",
				bin, err, strings.Split(name, "/")[0])
			return
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			e.err = err
			return
		}
		port := lis.Addr().(*net.TCPAddr).Port
		lis.Close()
		e.host = "127.0.0.1:" + strconv.Itoa(port)
		e.cmd = exec.Command(bin, args("127.0.0.1", port)...)
		e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // stop its JVM with it
		log := &output{}
		e.cmd.Stdout, e.cmd.Stderr = log, log
		if e.err = e.cmd.Start(); e.err != nil {
			return
		}
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			if c, err := net.Dial("tcp", e.host); err == nil {
				c.Close()
				return
			}
			if time.Now().After(deadline) {
				e.err = fmt.Errorf("emulator %s did not start in 60 s:\n%s", name, log)
				return
			}
		}
	})
	if e.err != nil {
		t.Fatal(e.err)
	}
	return e.host
}

// stopEmulators ends every emulator started, with its child processes.
func stopEmulators() {
	emulatorsMu.Lock()
	defer emulatorsMu.Unlock()
	for _, e := range emulators {
		if e.cmd != nil && e.cmd.Process != nil {
			syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
			e.cmd.Wait()
		}
	}
}

// pubsubEmulator returns the host:port of the Pub/Sub emulator.
func pubsubEmulator(t *testing.T) string {
	return startEmulator(t, "pubsub-emulator/bin/cloud-pubsub-emulator", func(host string, port int) []string {
		return []string{"--host=" + host, "--port=" + strconv.Itoa(port)}
	})
}
