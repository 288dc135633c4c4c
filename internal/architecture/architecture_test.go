// Package architecture holds the test that keeps the layers of
// docs/arquitectura.md true: which folder may import which.
package architecture

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "impo.com.uy/copetes/backend"

// imports maps each package folder (relative to the module root, "." for
// the root) to what its non-test files import.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "credenciales") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			out[rel] = append(out[rel], p)
		}
		if _, ok := out[rel]; !ok {
			out[rel] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// within reports whether import path p is the module's folder dir or below it.
func within(p, dir string) bool {
	full := module + "/" + dir
	return p == full || strings.HasPrefix(p, full+"/")
}

// httpFree are the packages that hold the product's rules: they must be
// usable by any face (a token endpoint, a login page, a Pub/Sub handler),
// so they know nothing of HTTP.
var httpFree = []string{
	"shared/accounts", "shared/authn", "shared/clients", "shared/document", "shared/lockout", "shared/oauth", "shared/password",
	"shared/ratelimit", "shared/routing", "shared/store", "shared/tokenpolicy", "shared/vending",
}

func TestLayers(t *testing.T) {
	pkgs := imports(t)
	if len(pkgs) < 10 {
		t.Fatalf("found only %d packages: is the walk rooted at the module?", len(pkgs))
	}
	for dir, imps := range pkgs {
		for _, p := range imps {
			var broken string
			switch {
			case dir == ".":
				if strings.HasPrefix(p, module) && !within(p, "functions") {
					broken = "the root package imports only the function packages"
				}
			case strings.HasPrefix(dir, "shared/"):
				if within(p, "functions") || within(p, "cmd") || within(p, "internal") || p == module {
					broken = "shared/ is the library: it imports no function, command or dev-only code"
				}
				if p == "net/http" && slices.Contains(httpFree, dir) {
					broken = "domain rules know nothing of HTTP: the function maps their errors to statuses"
				}
				if p == "testing" {
					broken = "the library holds no test code: test helpers live in internal/"
				}
			case strings.HasPrefix(dir, "functions/"):
				if within(p, "cmd") || within(p, "internal") || (within(p, "functions") && !within(p, dir)) {
					broken = "a function imports shared/ only: never another function, a command or dev-only code"
				}
				if p == "testing" {
					broken = "deployed code does not import testing"
				}
			case strings.HasPrefix(dir, "internal/"):
				if within(p, "cmd") {
					broken = "internal/ serves the commands and tests; it does not import them"
				}
			}
			if broken != "" {
				t.Errorf("%s imports %s: %s", dir, p, broken)
			}
		}
	}
}

// TestNewFunctionTouchesThreePlaces adds a function the way
// docs/arquitectura.md says, through a build overlay (its package and the
// blank import in backend.go; the deploy row is TestDeploy_ANewFunctionIsOneRow's),
// and checks that cmd/local serves it with no other change.
func TestNewFunctionTouchesThreePlaces(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	hello := filepath.Join(tmp, "hello.go")
	writeFile(t, hello, `// Package hello is the smallest function: it says hello.
package hello

import (
	"context"
	"net/http"

	"impo.com.uy/copetes/backend/shared/entrypoint"
	"impo.com.uy/copetes/backend/shared/platform"
)

func init() {
	entrypoint.HTTP("Hello", func(_ context.Context, p *platform.Platform) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hola")) }), nil
	})
}
`)
	backend, err := os.ReadFile(filepath.Join(root, "backend.go"))
	if err != nil {
		t.Fatal(err)
	}
	const anchor = "\t_ \"impo.com.uy/copetes/backend/functions/gettoken\"\n"
	if !strings.Contains(string(backend), anchor) {
		t.Fatal("backend.go no longer imports the functions as the checklist says")
	}
	newBackend := filepath.Join(tmp, "backend.go")
	writeFile(t, newBackend, strings.Replace(string(backend), anchor, anchor+"\t_ \"impo.com.uy/copetes/backend/functions/hello\"\n", 1))
	overlay := filepath.Join(tmp, "overlay.json")
	writeFile(t, overlay, fmt.Sprintf(`{"Replace":{%q:%q,%q:%q}}`,
		filepath.Join(root, "functions/hello/hello.go"), hello, filepath.Join(root, "backend.go"), newBackend))

	bin := filepath.Join(tmp, "local")
	build := exec.Command("go", "build", "-overlay", overlay, "-o", bin, "./cmd/local")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build with the new function: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT=0", "CREDENTIALS_DIR="+filepath.Join(tmp, "credenciales"),
		"SECRETS_SOURCE=dir", "STATE_STORE=memory", "FUNCTION_TARGET=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// cmd/local prints the address it serves once it listens.
	ready := regexp.MustCompile(`Funciones en (http://\S+): (.*)`)
	var base, names string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := ready.FindStringSubmatch(sc.Text()); m != nil {
			base, names = m[1], m[2]
			break
		}
	}
	go io.Copy(io.Discard, stderr)
	if base == "" {
		t.Fatalf("cmd/local never said where it serves: %v", sc.Err())
	}
	if !strings.Contains(names, "Hello") {
		t.Errorf("cmd/local lists %q, without Hello", names)
	}
	resp, err := http.Get(base + "/Hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hola" {
		t.Fatalf("GET /Hello = %d %q, want 200 hola", resp.StatusCode, body)
	}
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
