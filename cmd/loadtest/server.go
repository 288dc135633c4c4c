package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// server is one function's process, serving on loopback.
type server struct {
	Name   string
	URL    string // http://127.0.0.1:PORT
	cmd    *exec.Cmd
	stderr *tail
	done   chan struct{} // closed once the process has exited
	err    error         // why it exited, once done is closed
}

// start runs bin serving target, with the environment env (and nothing of
// this process's own: no credentials may leak in), on a free loopback port.
// It returns as soon as the process runs; ready waits until it answers.
func start(bin binary, target string, env []string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin.Path)
	cmd.Env = append([]string{"PORT=" + strconv.Itoa(port), "FUNCTION_TARGET=" + target}, env...)
	s := &server{Name: bin.Name, URL: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd,
		stderr: &tail{max: 64 << 10}, done: make(chan struct{})}
	cmd.Stdout = io.Discard // the log: one JSON line per request, written as deployed
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// Pid is the process's id, for /proc.
func (s *server) Pid() int { return s.cmd.Process.Pid }

// Stop ends the process and waits for it.
func (s *server) Stop() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// Stderr is the end of what the process wrote to standard error.
func (s *server) Stderr() string { return s.stderr.String() }

// errExited says that a server ended while it was awaited.
var errExited = errors.New("the process exited")

// dialed waits until the server accepts a TCP connection.
func (s *server) dialed(ctx context.Context) error {
	addr := s.URL[len("http://"):]
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s: %w (%v):\n%s", s.Name, errExited, s.err, s.Stderr())
		case <-ctx.Done():
			return fmt.Errorf("%s: no connection: %w", s.Name, ctx.Err())
		default:
		}
		// The next try as soon as possible: this is what a cold start
		// measures. A connection refused costs a few microseconds.
		time.Sleep(100 * time.Microsecond)
	}
}

// ready waits until req (made anew for each try) gets 200 from the server.
// A refused connection is tried again; any other answer than 200 is an
// error, with what the server said.
func (s *server) ready(ctx context.Context, client *http.Client, req func() (*http.Request, error)) error {
	if err := s.dialed(ctx); err != nil {
		return err
	}
	for {
		r, err := req()
		if err != nil {
			return err
		}
		resp, err := client.Do(r.WithContext(ctx))
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			return fmt.Errorf("%s: %s %s: %d %s\n%s", s.Name, r.Method, r.URL.Path, resp.StatusCode, body, s.Stderr())
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", s.Name, ctx.Err())
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s: %w (%v):\n%s", s.Name, errExited, s.err, s.Stderr())
		default:
		}
	}
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = bytes.Clone(t.buf[over:])
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
