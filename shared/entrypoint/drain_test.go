package entrypoint

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"impo.com.uy/copetes/backend/internal/logtest"
	"impo.com.uy/copetes/backend/shared/httpapi"
)

// guard bounds a wait that would otherwise hang a broken test; no outcome
// depends on it.
const guard = time.Minute

// testRegistry is a registry of its own whose signals are left to the
// caller: a test never installs a signal handler in the test process.
func testRegistry() *registry {
	r := &registry{}
	r.signals.settled.Store(true)
	return r
}

// built is a lazy function that is already built.
func built[H any](h H) *lazy[H] {
	l := &lazy[H]{name: "test"}
	l.h.Store(&h)
	return l
}

// blocking is a handler that says when a request has entered it and
// answers only once the test closes release.
func blocking() (h http.Handler, entered <-chan struct{}, release chan struct{}) {
	in := make(chan struct{}, 10)
	release = make(chan struct{})
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in <- struct{}{}
		<-release
		httpapi.WriteJSON(w, map[string]string{"answer": "complete"})
	})
	return h, in, release
}

// logged waits until the log has a line with message msg and returns it.
func logged(t *testing.T, log *logtest.Log, msg string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := log.Wait(ctx, func(s string) bool { return strings.Contains(s, `"message":"`+msg+`"`) }); err != nil {
		t.Fatalf("no %q in the log (%v):\n%s", msg, err, log)
	}
	return log.Messages(msg)[0]
}

type result struct {
	resp *http.Response
	body []byte
	err  error
}

func get(url string) <-chan result {
	out := make(chan result, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			out <- result{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		out <- result{resp, body, err}
	}()
	return out
}

func TestDrain_InFlightRequestsFinishNewOnesAreRefused(t *testing.T) {
	log := logtest.Capture(t)
	r := testRegistry()
	h, entered, release := blocking()
	srv := httptest.NewServer(r.serveHTTP("F", built(h)))
	defer srv.Close()

	inFlight := get(srv.URL)
	<-entered
	drained := make(chan error, 1)
	go func() { drained <- r.flight.drain(context.Background()) }()
	if n := logged(t, log, "draining started")["in_flight"]; n != float64(1) {
		t.Errorf("draining started with in_flight %v, want 1", n)
	}

	late := <-get(srv.URL)
	if late.err != nil {
		t.Fatal(late.err)
	}
	if late.resp.StatusCode != http.StatusServiceUnavailable || late.resp.Header.Get("Retry-After") != "1" || !late.resp.Close {
		t.Errorf("a request during the drain: %d, Retry-After %q, close %v; want 503, a Retry-After and Connection: close",
			late.resp.StatusCode, late.resp.Header.Get("Retry-After"), late.resp.Close)
	}
	select {
	case err := <-drained:
		t.Fatalf("the drain ended (%v) while a request was still in its handler", err)
	default:
	}

	close(release)
	got := <-inFlight
	if got.err != nil || got.resp.StatusCode != 200 || !strings.Contains(string(got.body), "complete") {
		t.Fatalf("the request in flight: %v %v %q, want its whole answer", got.err, got.resp, got.body)
	}
	if !got.resp.Close {
		t.Error("an answer sent while draining does not say Connection: close: the client would reuse a dying connection")
	}
	if err := <-drained; err != nil {
		t.Fatalf("drain: %v", err)
	}
	logged(t, log, "draining finished")
}

func TestDrain_GraceRunsOutNamesWhatWasCut(t *testing.T) {
	log := logtest.Capture(t)
	r := testRegistry()
	h, entered, release := blocking()
	srv := httptest.NewServer(r.serveHTTP("Login", built(h)))
	defer srv.Close()
	inFlight := get(srv.URL)
	defer func() { close(release); <-inFlight }()
	<-entered

	ctx, cancel := context.WithCancel(context.Background())
	drained := make(chan error, 1)
	go func() { drained <- r.flight.drain(ctx) }()
	logged(t, log, "draining started")
	cancel() // the grace runs out
	if err := <-drained; !errors.Is(err, context.Canceled) {
		t.Fatalf("drain with a request left: %v, want the context's error", err)
	}
	line := logged(t, log, "draining cut short")
	if line["cut"] != float64(1) || line["by_function"].(map[string]any)["Login"] != float64(1) {
		t.Errorf("the cut line %v does not say that one Login request was cut", line)
	}
}

func TestDrain_NothingInFlightEndsAtOnce(t *testing.T) {
	log := logtest.Capture(t)
	r := testRegistry()
	if err := r.flight.drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	logged(t, log, "draining started")
	logged(t, log, "draining finished")
}

func TestDrain_EventInFlightFinishesNewOnesAreDeliveredAgain(t *testing.T) {
	log := logtest.Capture(t)
	r := testRegistry()
	entered, release := make(chan struct{}, 1), make(chan struct{})
	fn := r.serveEvent("Validate", built[EventHandler](func(context.Context, event.Event) error {
		entered <- struct{}{}
		<-release
		return nil
	}))
	e := event.New()
	e.SetID("1")
	first := make(chan error, 1)
	go func() { first <- fn(context.Background(), e) }()
	<-entered
	drained := make(chan error, 1)
	go func() { drained <- r.flight.drain(context.Background()) }()
	logged(t, log, "draining started")

	err := fn(context.Background(), e)
	var res *cehttp.Result
	if !protocol.ResultAs(err, &res) || res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("an event during the drain: %v, want a 503 result, which Eventarc delivers again", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("the event in flight: %v", err)
	}
	if err := <-drained; err != nil {
		t.Fatalf("drain: %v", err)
	}
}

func TestDrainOnSignal_DrainsThenExitsZero(t *testing.T) {
	log := logtest.Capture(t)
	r := testRegistry()
	h, entered, release := blocking()
	srv := httptest.NewServer(r.serveHTTP("F", built(h)))
	defer srv.Close()
	inFlight := get(srv.URL)
	<-entered

	sig := make(chan os.Signal, 1)
	exited := make(chan int, 1)
	go r.drainOnSignal(sig, guard, func(code int) { exited <- code })
	sig <- syscall.SIGTERM
	if s := logged(t, log, "draining started")["signal"]; s != "terminated" {
		t.Errorf("draining started on signal %v, want terminated", s)
	}
	select {
	case code := <-exited:
		t.Fatalf("exited (%d) with a request in flight", code)
	default:
	}
	close(release)
	if got := <-inFlight; got.err != nil || got.resp.StatusCode != 200 {
		t.Fatalf("the request in flight: %v %v", got.err, got.resp)
	}
	if code := <-exited; code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
}

func TestHTTP_BadDrainGraceIsMisconfigured(t *testing.T) {
	log := logtest.Capture(t)
	t.Setenv("DRAIN_GRACE", "30s") // Cloud Run kills at 10 s
	r := &registry{}               // signals not settled: the first request installs them
	srv := httptest.NewServer(r.serveHTTP("F", built[http.Handler](http.NotFoundHandler())))
	defer srv.Close()
	got := <-get(srv.URL)
	if got.err != nil || got.resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("with a bad DRAIN_GRACE: %v %v, want 500", got.err, got.resp)
	}
	if r.signals.settled.Load() {
		t.Error("a signal handler was installed with a bad grace")
	}
	var problem httpapi.Problem
	json.Unmarshal(got.body, &problem)
	if strings.Contains(problem.Detail, "DRAIN_GRACE") || !strings.Contains(log.String(), "DRAIN_GRACE") {
		t.Errorf("the client got %q and the log %s; want the variable named in the log only", problem.Detail, log)
	}
}

// Calls come and go while the drain starts: it ends only once every call
// it let in has answered, whichever of them leaves last. The count in
// flight is atomics without a lock, so this is the test of its order.
func TestDrain_EndsAfterTheLastCallWhateverTheOrder(t *testing.T) {
	logtest.Capture(t)
	for round := range 20 {
		r := testRegistry()
		var running atomic.Int64
		fn := r.serveEvent("Validate", built[EventHandler](func(context.Context, event.Event) error {
			running.Add(1)
			defer running.Add(-1)
			for range round * 10 { // some calls stay longer than others
				runtime.Gosched()
			}
			return nil
		}))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 8 {
			wg.Go(func() {
				<-start
				for range 5 {
					fn(context.Background(), event.New())
				}
			})
		}
		close(start)
		if err := r.flight.drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := running.Load(); n != 0 {
			t.Fatalf("round %d: the drain ended with %d call(s) in their handler", round, n)
		}
		wg.Wait()
	}
}
