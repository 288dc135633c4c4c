// Package entrypoint registers the functions' entry points with the
// Functions Framework and remembers them, so that cmd/local can serve
// every function of the process side by side, each under its own path.
package entrypoint

import (
	"net/http"
	"sync"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
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

// HTTPFunctions returns the HTTP functions registered so far.
func HTTPFunctions() []Function {
	mu.Lock()
	defer mu.Unlock()
	return append([]Function(nil), fns...)
}
