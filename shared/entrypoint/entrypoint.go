// Package entrypoint registers the functions' entry points with the
// Functions Framework, builds each function lazily on its first call,
// counts the calls in flight so that a stopping process lets them finish,
// and remembers the functions, so that cmd/local can serve every function
// of the process side by side, each under its own path.
//
// Its registry is the one piece of process-wide state in the backend: the
// entry points registered by init, the platform (secret source and state
// store) that the functions of one process share, and the calls in flight.
package entrypoint

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"impo.com.uy/copetes/backend/shared/httpapi"
	"impo.com.uy/copetes/backend/shared/logging"
	"impo.com.uy/copetes/backend/shared/platform"
)

// EventHandler handles one CloudEvent: nil when the event is done with, an
// error when a retry can help.
type EventHandler = func(context.Context, event.Event) error

// Function is a registered HTTP entry point.
type Function struct {
	Name    string
	Handler http.HandlerFunc
}

// EventFunction is a registered CloudEvent entry point.
type EventFunction struct {
	Name string
	Fn   EventHandler
}

// registry is what init registered, the platform its functions share,
// and what the process does when it is told to stop.
type registry struct {
	mu       sync.Mutex
	http     []Function
	events   []EventFunction
	platform *platform.Platform // built at the first function's build

	flight  flight      // calls in flight; whether the process drains
	signals signalWatch // whether entrypoint drains on SIGTERM by itself
}

var reg registry

// HTTP registers an HTTP function under name (its --entry-point). build
// makes its handler at the first request, not in init: every deployed
// function runs every package's init, and a handler needs secrets, a store
// and clients that only its own function should create. A failed build
// answers 500 and is tried again by the next request; its cause goes to
// the log, never to the client. Call it from init.
func HTTP(name string, build func(context.Context, *platform.Platform) (http.Handler, error)) {
	fn := reg.serveHTTP(name, &lazy[http.Handler]{name: name, build: build})
	functions.HTTP(name, fn)
	reg.mu.Lock()
	defer reg.mu.Unlock()
	reg.http = append(reg.http, Function{Name: name, Handler: fn})
}

// serveHTTP is the handler registered for an HTTP function: it counts the
// request in flight, refuses it while the process drains, builds the
// function if need be, and sends its answer whole before the request
// counts as done (see heldResponse).
func (r *registry) serveHTTP(name string, l *lazy[http.Handler]) http.HandlerFunc {
	calls := r.flight.calls(name)
	return func(w http.ResponseWriter, req *http.Request) {
		accepted := r.flight.enter(calls)
		defer r.flight.leave(calls)
		hw := &heldResponse{w: w}
		if !accepted {
			httpapi.WriteProblem(hw, req, &httpapi.Error{Status: http.StatusServiceUnavailable,
				Detail: "this instance is shutting down; try again", RetryAfter: time.Second})
			hw.finish(true)
			return
		}
		h, err := ready(req.Context(), r, l)
		if err != nil {
			httpapi.WriteProblem(hw, req, &httpapi.Error{Status: http.StatusInternalServerError,
				Detail: name + " is misconfigured; see the server log", Err: err})
		} else {
			h.ServeHTTP(hw, req)
		}
		// Not deferred: after a panic the server (or the Functions
		// Framework) answers, not what the handler had written so far.
		hw.finish(r.flight.isDraining())
	}
}

// CloudEvent registers a CloudEvent function under name, built like an
// HTTP one. A failed build is an error for the event, so that Pub/Sub
// keeps the message until an operator fixes the configuration (or the
// dead-letter topic takes it). Call it from init.
func CloudEvent(name string, build func(context.Context, *platform.Platform) (EventHandler, error)) {
	fn := reg.serveEvent(name, &lazy[EventHandler]{name: name, build: build})
	functions.CloudEvent(name, fn)
	reg.mu.Lock()
	defer reg.mu.Unlock()
	reg.events = append(reg.events, EventFunction{Name: name, Fn: fn})
}

// serveEvent is the function registered for a CloudEvent function: it
// counts the delivery in flight, refuses it with a 503 while the process
// drains (Eventarc delivers it again, to another instance), and builds
// the function if need be.
//
// The count starts once the Functions Framework has decoded the event and
// ends when the function returns, before the framework writes the
// acknowledgement: a process that exits in between loses that answer, and
// the message is delivered again, which validate's handled ids absorb.
func (r *registry) serveEvent(name string, l *lazy[EventHandler]) EventHandler {
	calls := r.flight.calls(name)
	return func(ctx context.Context, e event.Event) error {
		accepted := r.flight.enter(calls)
		defer r.flight.leave(calls)
		if !accepted {
			slog.WarnContext(ctx, "event refused: this instance is shutting down", "function", name, "event_id", e.ID())
			return cehttp.NewResult(http.StatusServiceUnavailable, "%s: this instance is shutting down; deliver again", name)
		}
		h, err := ready(ctx, r, l)
		if err != nil {
			slog.ErrorContext(ctx, "function is misconfigured", "function", name, "error", err.Error())
			return fmt.Errorf("%s is misconfigured: %w", name, err)
		}
		return h(ctx, e)
	}
}

// ready makes sure the process drains on SIGTERM, then returns the built
// function.
func ready[H any](ctx context.Context, r *registry, l *lazy[H]) (H, error) {
	if err := r.watchSignals(); err != nil {
		var zero H
		return zero, err
	}
	return l.get(ctx)
}

// HTTPFunctions returns the HTTP functions registered so far.
func HTTPFunctions() []Function {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return append([]Function(nil), reg.http...)
}

// CloudEventFunctions returns the CloudEvent functions registered so far.
func CloudEventFunctions() []EventFunction {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return append([]EventFunction(nil), reg.events...)
}

// processPlatform returns the process's platform, building it on first
// use; a failed build is tried again by the next caller.
func processPlatform(ctx context.Context) (*platform.Platform, error) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if reg.platform == nil {
		setMemoryLimit(ctx)
		p, err := platform.FromEnv(ctx)
		if err != nil {
			return nil, err
		}
		reg.platform = p
	}
	return reg.platform, nil
}

// lazy builds a handler once it is first needed. Once built, a call costs
// one atomic load; until then, callers queue behind one build at a time.
type lazy[H any] struct {
	name  string
	build func(context.Context, *platform.Platform) (H, error)
	mu    sync.Mutex
	h     atomic.Pointer[H]
}

func (l *lazy[H]) get(ctx context.Context) (H, error) {
	if h := l.h.Load(); h != nil {
		return *h, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.h.Load(); h != nil {
		return *h, nil
	}
	var zero H
	// The clients built here outlive the request that happens to come
	// first, and keep the context they were made with for their
	// credentials: it must not be cancelled with that request.
	ctx = context.WithoutCancel(ctx)
	logging.Setup()
	p, err := processPlatform(ctx)
	if err != nil {
		return zero, err
	}
	h, err := l.build(ctx, p)
	if err != nil {
		return zero, err
	}
	l.h.Store(&h)
	slog.InfoContext(ctx, "function ready", "function", l.name)
	return h, nil
}
