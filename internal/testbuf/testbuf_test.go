package testbuf_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"

	"impo.com.uy/copetes/backend/internal/testbuf"
)

func TestBuffer_ConcurrentWritesAllLand(t *testing.T) {
	var b testbuf.Buffer
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() { fmt.Fprintf(&b, "line %d\n", i) })
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 100 {
		t.Fatalf("%d lines after 100 concurrent writes", n)
	}
}

// TestBuffer_WaitReturnsWhenTheOutputShowsUp: a writer that runs after
// the waiter started wakes it; no step depends on how long either takes.
func TestBuffer_WaitReturnsWhenTheOutputShowsUp(t *testing.T) {
	var b testbuf.Buffer
	waiting := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		result <- b.Wait(context.Background(), func(s string) bool {
			select {
			case <-waiting:
			default:
				close(waiting) // the first check ran: the waiter is in
			}
			return strings.Contains(s, "ready")
		})
	}()
	<-waiting
	io.WriteString(&b, "starting\n")
	io.WriteString(&b, "ready\n")
	if err := <-result; err != nil {
		t.Fatalf("Wait = %v, want nil once the output holds what it waits for", err)
	}
}

func TestBuffer_WaitForWhatIsAlreadyThere(t *testing.T) {
	var b testbuf.Buffer
	io.WriteString(&b, "ready\n")
	b.Close()
	if err := b.Wait(context.Background(), func(s string) bool { return s == "ready\n" }); err != nil {
		t.Fatalf("Wait for output already written = %v, want nil", err)
	}
}

func TestBuffer_WaitEndsWhenTheWriterEnds(t *testing.T) {
	var b testbuf.Buffer
	io.WriteString(&b, "local: bad configuration\n")
	b.Close()
	err := b.Wait(context.Background(), func(s string) bool { return strings.Contains(s, "ready") })
	if !errors.Is(err, testbuf.ErrEnded) {
		t.Fatalf("Wait on closed output without the line = %v, want ErrEnded", err)
	}
	if _, err := io.WriteString(&b, "late"); err == nil {
		t.Error("Write after Close succeeded")
	}
}

func TestBuffer_WaitEndsWithItsContext(t *testing.T) {
	var b testbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Wait(ctx, func(string) bool { return false }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestBuffer_LineMatchesOnlyWholeLines: a line cut mid-write must not
// yield half a password.
func TestBuffer_LineMatchesOnlyWholeLines(t *testing.T) {
	var b testbuf.Buffer
	re := regexp.MustCompile(`contraseña (\w+)`)
	io.WriteString(&b, "otra línea\ncontraseña ABC")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if m, err := b.Line(ctx, re); err == nil {
		t.Fatalf("Line matched %q in a line still being written", m)
	}
	io.WriteString(&b, "DEF\n")
	m, err := b.Line(context.Background(), re)
	if err != nil || m[1] != "ABCDEF" {
		t.Fatalf("Line = %q, %v; want the whole password ABCDEF", m, err)
	}
}
