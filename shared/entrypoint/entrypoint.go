// Package entrypoint registers the functions' entry points with the
// Functions Framework and remembers them, so that cmd/local can serve
// every function of the process side by side, each under its own path.
package entrypoint

import (
	"context"
	"net/http"
	"sync"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/cloudevents/sdk-go/v2/event"

	"impo.com.uy/copetes/backend/shared/httpapi"
	"impo.com.uy/copetes/backend/shared/logging"
)

// Function is a registered HTTP entry point.
type Function struct {
	Name    string
	Handler http.HandlerFunc
}

var (
	mu  sync.Mutex
	fns []Function
)

// HTTP registers an HTTP function under name (its --entry-point). Call it
// from init.
func HTTP(name string, fn http.HandlerFunc) {
	functions.HTTP(name, fn)
	mu.Lock()
	defer mu.Unlock()
	fns = append(fns, Function{Name: name, Handler: fn})
}

// EventFunction is a registered CloudEvent entry point.
type EventFunction struct {
	Name string
	Fn   func(context.Context, event.Event) error
}

var events []EventFunction

// CloudEvent registers a CloudEvent function under name. Call it from init.
func CloudEvent(name string, fn func(context.Context, event.Event) error) {
	functions.CloudEvent(name, fn)
	mu.Lock()
	defer mu.Unlock()
	events = append(events, EventFunction{Name: name, Fn: fn})
}

// CloudEventFunctions returns the CloudEvent functions registered so far.
func CloudEventFunctions() []EventFunction {
	mu.Lock()
	defer mu.Unlock()
	return append([]EventFunction(nil), events...)
}

// HTTPFunctions returns the HTTP functions registered so far.
func HTTPFunctions() []Function {
	mu.Lock()
	defer mu.Unlock()
	return append([]Function(nil), fns...)
}

// Lazy returns an entry point that builds its handler on the first
// request, not in init: every deployed function runs every package's
// init, and a handler needs secrets, a store and clients that only its
// own function should create. A failed build answers 500 and is retried
// by the next request; its cause goes to the log, never to the client.
func Lazy(name string, build func(context.Context) (http.Handler, error)) http.HandlerFunc {
	var (
		mu sync.Mutex
		h  http.Handler
	)
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if h == nil {
			logging.Setup()
			built, err := build(r.Context())
			if err != nil {
				mu.Unlock()
				httpapi.WriteProblem(w, r, &httpapi.Error{Status: http.StatusInternalServerError,
					Detail: name + " is misconfigured; see the server log", Err: err})
				return
			}
			h = built
		}
		mu.Unlock()
		h.ServeHTTP(w, r)
	}
}
