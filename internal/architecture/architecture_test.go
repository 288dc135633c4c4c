// Package architecture holds the test that keeps the layers of
// docs/arquitectura.md true: which folder may import which.
package architecture

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
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
	"shared/accounts", "shared/authn", "shared/document", "shared/lockout", "shared/password",
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
				if p == "testing" && !strings.HasSuffix(dir, "test") {
					broken = "only the *test helper packages import testing"
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
