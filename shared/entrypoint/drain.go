package entrypoint

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"impo.com.uy/copetes/backend/shared/env"
)

// Cloud Run, which runs 2nd-gen functions, sends SIGTERM when it stops an
// instance and SIGKILL 10 s later: a drain must end before that.
const (
	defaultDrainGrace = 8 * time.Second
	maxDrainGrace     = 9 * time.Second
)

// DrainGraceFromEnv is how long a stopping process waits for the requests
// and events in flight: DRAIN_GRACE, 8 s by default, at most 9 s.
func DrainGraceFromEnv() (time.Duration, error) {
	return env.Duration("DRAIN_GRACE", defaultDrainGrace, 0, maxDrainGrace)
}

// Drain stops the process's functions from taking new work and waits
// until the requests and events in flight have finished, or ctx ends. From
// then on an HTTP request is answered 503 with Retry-After and Connection:
// close, and an event is refused with a 503 so that it is delivered again,
// to another instance. It logs a line when it starts and one when it ends,
// naming what was cut if ctx ended first, and then returns an error.
//
// A process whose server is the Functions Framework's never calls it:
// entrypoint drains on SIGTERM by itself (see CallerHandlesShutdown).
func Drain(ctx context.Context) error { return reg.flight.drain(ctx) }

// CallerHandlesShutdown tells entrypoint that the process serves the
// functions on an http.Server of its own and handles SIGTERM itself: it
// shuts its server down and calls Drain. Without it, entrypoint catches
// SIGTERM and SIGINT from the first request on, drains for DRAIN_GRACE and
// exits: the Functions Framework, which owns the server in production,
// has no shutdown of its own. Call it before serving.
func CallerHandlesShutdown() {
	s := &reg.signals
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		signal.Stop(s.ch)
	}
	s.byCaller = true
	s.settled.Store(true)
}

// flight counts the calls in flight, by function, and turns new calls
// away once the process drains. A call costs atomic adds, no lock: the
// lock is for drain and for the last call out of a drain.
type flight struct {
	// state is the number of calls in flight, plus draining once drain
	// has started.
	state atomic.Int64

	mu         sync.Mutex
	byFunction map[string]*atomic.Int64 // calls in flight, by function, for the log of a drain cut short
	idle       chan struct{}            // made when draining starts; closed when no call is left
	idleClosed bool
}

// draining is the bit of flight.state that says drain has started.
const draining = 1 << 62

// calls returns the count of function name's calls in flight, for enter
// and leave: a function's handler looks it up once, when it is made.
func (f *flight) calls(name string) *atomic.Int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byFunction == nil {
		f.byFunction = map[string]*atomic.Int64{}
	}
	n := f.byFunction[name]
	if n == nil {
		n = new(atomic.Int64)
		f.byFunction[name] = n
	}
	return n
}

// enter records a call of the function whose count is calls, which must
// call leave when it has answered. It reports false when the process
// drains: the call is to be refused (a refusal counts as in flight too,
// so that its answer is sent before the process exits).
func (f *flight) enter(calls *atomic.Int64) bool {
	calls.Add(1)
	return f.state.Add(1)&draining == 0
}

// leave records that a call has answered.
func (f *flight) leave(calls *atomic.Int64) {
	calls.Add(-1)
	if f.state.Add(-1) == draining {
		f.closeIdle()
	}
}

// closeIdle tells drain that no call is left.
func (f *flight) closeIdle() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.idleClosed {
		close(f.idle)
		f.idleClosed = true
	}
}

// isDraining reports whether drain has started.
func (f *flight) isDraining() bool { return f.state.Load()&draining != 0 }

// drain is Drain for this flight; attrs are added to its first log line.
func (f *flight) drain(ctx context.Context, attrs ...any) error {
	f.mu.Lock()
	if f.idle == nil {
		f.idle = make(chan struct{})
	}
	idle := f.idle
	f.mu.Unlock()
	// From here on, the call that leaves last closes idle (leave), and
	// if none is in flight now, none will: it is closed here.
	inFlight := f.state.Or(draining) &^ draining
	if inFlight == 0 {
		f.closeIdle()
	}

	attrs = append(attrs, "in_flight", inFlight)
	if deadline, ok := ctx.Deadline(); ok {
		attrs = append(attrs, "grace", time.Until(deadline).Round(time.Millisecond).String())
	}
	slog.Info("draining started", attrs...)
	select {
	case <-idle:
		slog.Info("draining finished", "in_flight_at_start", inFlight)
		return nil
	case <-ctx.Done():
	}
	f.mu.Lock()
	cut := map[string]int64{}
	for name, n := range f.byFunction {
		if v := n.Load(); v > 0 {
			cut[name] = v
		}
	}
	f.mu.Unlock()
	total := f.state.Load() &^ draining
	if total == 0 { // the last one left as the grace ran out
		slog.Info("draining finished", "in_flight_at_start", inFlight)
		return nil
	}
	slog.Error("draining cut short", "cut", total, "by_function", cut, "in_flight_at_start", inFlight)
	return fmt.Errorf("drain: %d call(s) still in flight: %w", total, context.Cause(ctx))
}

// signalWatch is entrypoint's own handling of SIGTERM, for a process that
// does not own its server.
type signalWatch struct {
	settled  atomic.Bool // installed, or left to the caller: nothing more to do
	mu       sync.Mutex
	byCaller bool
	ch       chan os.Signal
}

// watchSignals installs the drain on SIGTERM and SIGINT once, unless the
// caller handles them. It is called on every request and event, so that
// nothing is installed in a process that never serves (cmd/admin, a
// function's unit tests): until then the signals keep their default
// action, which loses nothing because nothing is in flight. A bad
// DRAIN_GRACE is an error, and the next call tries again.
func (r *registry) watchSignals() error {
	s := &r.signals
	if s.settled.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.settled.Load() {
		return nil
	}
	grace, err := DrainGraceFromEnv()
	if err != nil {
		return err
	}
	s.ch = make(chan os.Signal, 1)
	signal.Notify(s.ch, syscall.SIGTERM, os.Interrupt)
	go r.drainOnSignal(s.ch, grace, os.Exit)
	s.settled.Store(true)
	return nil
}

// drainOnSignal waits for a signal on ch, drains for at most grace, and
// exits with status 0 whether or not everything finished (the log says
// what was cut): the instance is going away either way.
func (r *registry) drainOnSignal(ch chan os.Signal, grace time.Duration, exit func(int)) {
	sig := <-ch
	// A second signal takes its default action: the process ends at once.
	signal.Stop(ch)
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	r.flight.drain(ctx, "signal", sig.String())
	exit(0)
}
