package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The Go buildpack for Cloud Functions (GoogleCloudPlatform/buildpacks,
// cmd/go/functions_framework/lib) writes a main package into
// functions.local/app inside the uploaded module; that main imports the
// module's root package, whose init registers the entry points, and
// starts the Functions Framework, which serves FUNCTION_TARGET at "/".
// deploy.sh makes each function's root package import that function
// alone. The load test builds the same two files, through a build overlay
// (go help build, -overlay), so that the checkout is left as it is.
const appDir = "functions.local/app"

// ldflags are the linker flags that deploy.sh gives the buildpack
// (GOOGLE_GOLDFLAGS): no symbol table, no DWARF.
const ldflags = "-s -w"

// rootSource is the root package that deploy.sh generates for a function
// whose package is pkg (functions/login), in the module named module.
func rootSource(module, pkg string) string {
	return fmt.Sprintf(`// Package backend is the root package of one function's upload: it
// imports that function's package alone.
package backend

import (
	_ "github.com/GoogleCloudPlatform/functions-framework-go/functions"

	_ %q
)
`, module+"/"+pkg)
}

// trivialSource is the floor: a root package whose one function answers
// {"ok":true}, registered with the Functions Framework as the smallest
// function would be.
const trivialSource = `// Package backend is the trivial function: it answers {"ok":true}.
package backend

import (
	"net/http"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
)

func init() {
	functions.HTTP("Hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(` + "`" + `{"ok":true}` + "`" + `))
	})
}
`

// mainSource is the buildpack's main (its template for functions that
// register themselves, template_declarative.go), but listening on
// loopback only: the functions run with development credentials.
func mainSource(module string) string {
	return fmt.Sprintf(`// Command app serves the function that FUNCTION_TARGET names, as the
// Go buildpack's generated main does.
package main

import (
	"log"
	"net/http"
	"os"

	_ %q

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
)

func main() {
	http.HandleFunc("/robots.txt", http.NotFound)
	http.HandleFunc("/favicon.ico", http.NotFound)
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if err := funcframework.StartHostPort("127.0.0.1", port); err != nil {
		log.Fatalf("Function failed to start: %%v\n", err)
	}
}
`, module)
}

// binary is one function built as it is deployed.
type binary struct {
	Name string // "trivial", or the function's package name
	Pkg  string // its package, functions/<name>; "" for the trivial function
	Path string // the executable
	Size int64  // its size in bytes
}

// build compiles the function of package pkg ("" for the trivial one) in
// the module at root into dir, with the root package and main that a
// deploy gives it.
func build(ctx context.Context, root, module, dir, name, pkg string) (binary, error) {
	src := filepath.Join(dir, "src-"+name)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return binary{}, err
	}
	rootGo := trivialSource
	if pkg != "" {
		rootGo = rootSource(module, pkg)
	}
	files := map[string]string{
		filepath.Join(root, "backend.go"):      rootGo,
		filepath.Join(root, appDir, "main.go"): mainSource(module),
	}
	overlay := map[string]map[string]string{"Replace": {}}
	for target, text := range files {
		tmp := filepath.Join(src, filepath.Base(target))
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			return binary{}, err
		}
		overlay["Replace"][target] = tmp
	}
	// The checkout's other root files would join the generated one.
	others, _ := filepath.Glob(filepath.Join(root, "*.go"))
	for _, f := range others {
		if filepath.Base(f) != "backend.go" && !strings.HasSuffix(f, "_test.go") {
			overlay["Replace"][f] = ""
		}
	}
	ov, _ := json.Marshal(overlay)
	ovFile := filepath.Join(src, "overlay.json")
	if err := os.WriteFile(ovFile, ov, 0o644); err != nil {
		return binary{}, err
	}
	out := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-overlay", ovFile, "-ldflags", ldflags, "-o", out, "./"+appDir)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return binary{}, fmt.Errorf("build %s: %v\n%s", name, err, stderr.String())
	}
	info, err := os.Stat(out)
	if err != nil {
		return binary{}, err
	}
	return binary{Name: name, Pkg: pkg, Path: out, Size: info.Size()}, nil
}

// goTool runs go with args in dir and returns its output, trimmed.
func goTool(ctx context.Context, dir string, args ...string) (string, error) {
	return output(ctx, dir, "go", args...)
}

// gitOutput runs git with args in dir and returns its output, trimmed.
func gitOutput(ctx context.Context, dir string, args ...string) (string, error) {
	return output(ctx, dir, "git", args...)
}

func output(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}
