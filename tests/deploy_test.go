package tests

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"impo.com.uy/copetes/backend/shared/clients"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// repoRoot is the checkout the tests run in (tests/ is one level down).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// deploySh runs deploy.sh from the repository root with env, no settings
// from the environment leaking in.
func deploySh(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return deployShIn(t, repoRoot(t), env, args...)
}

// deployShIn runs the deploy.sh of folder dir, as deploySh does.
func deployShIn(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command("./deploy.sh", args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, goEnv(t)...)
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// goEnv lets deploy.sh's go list find this machine's module cache and
// build cache, and never the network: a test stages what is already here.
func goEnv(t *testing.T) []string {
	t.Helper()
	goEnvOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMODCACHE", "GOCACHE").Output()
		if err != nil {
			goEnvErr = err
			return
		}
		f := strings.Split(strings.TrimSpace(string(out)), "\n")
		goEnvVars = []string{"GOMODCACHE=" + f[0], "GOCACHE=" + f[1], "GOPROXY=off", "GOFLAGS=-mod=readonly", "GOTOOLCHAIN=local", "GOWORK=off"}
	})
	if goEnvErr != nil {
		t.Fatalf("go env: %v", goEnvErr)
	}
	return goEnvVars
}

var (
	goEnvOnce sync.Once
	goEnvVars []string
	goEnvErr  error
)

func TestDeploy_DryRunMatchesGolden(t *testing.T) {
	for _, target := range []string{"setup", "all", "jwks"} {
		t.Run(target, func(t *testing.T) {
			args := []string{"--dry-run", "--settings", "tests/testdata/deploy.env"}
			var env []string
			switch target {
			case "setup":
				args = append(args, "setup")
			case "jwks": // login's URL given: the verifiers read its JWKS there
				env = []string{"LOGIN_URL=https://login-impo.a.run.app"}
				args = append(args, "validate", "gettoken")
			}
			out, errs, err := deploySh(t, env, args...)
			if err != nil {
				t.Fatalf("deploy.sh %v: %v\n%s", args, err, errs)
			}
			golden := filepath.Join("testdata", "deploy-dry-run-"+target+".golden")
			if *update {
				os.WriteFile(golden, []byte(out), 0o644)
			}
			want, _ := os.ReadFile(golden)
			if diff := cmp.Diff(string(want), out); diff != "" {
				t.Errorf("dry run differs from %s (go test ./tests -run Deploy -update to accept) (-want +got):\n%s", golden, diff)
			}
			if entries, _ := os.ReadDir(filepath.Join(repoRoot(t), ".deploy")); len(entries) != 0 {
				t.Error("a dry run wrote files")
			}
		})
	}
}

func TestDeploy_MissingSettingFailsEarlyByName(t *testing.T) {
	tests := []struct {
		env  []string
		want string
	}{
		{[]string{"REGION=r"}, "missing or bad setting: PROJECT"},
		{[]string{"PROJECT=p"}, "missing or bad setting: REGION"},
		{[]string{"PROJECT=p", "REGION=r", "SECRETS_MODE=vault"}, "SECRETS_MODE"},
		{[]string{"PROJECT=p", "REGION=r", "GETTOKEN_SOURCE=selfsigned"}, "GETTOKEN_SOURCE"},
		{[]string{"PROJECT=p", "REGION=r", "GETTOKEN_POLICY_FILE=/nope.json"}, "GETTOKEN_POLICY_FILE"},
		{[]string{"PROJECT=p", "REGION=r", "MAX_DELIVERY_ATTEMPTS=3"}, "MAX_DELIVERY_ATTEMPTS (5 to 100"},
		{[]string{"PROJECT=p", "REGION=r", "MAX_DELIVERY_ATTEMPTS=ten"}, "MAX_DELIVERY_ATTEMPTS (5 to 100"},
		{[]string{"PROJECT=p", "REGION=r", "MAX_RETRY_DELAY=10m"}, "MAX_RETRY_DELAY (seconds, 0s to 600s"},
		{[]string{"PROJECT=p", "REGION=r", "MIN_RETRY_DELAY=700s"}, "MIN_RETRY_DELAY (seconds, 0s to 600s"},
		{[]string{"PROJECT=p", "REGION=r", "MIN_RETRY_DELAY=60s", "MAX_RETRY_DELAY=30s"}, "MIN_RETRY_DELAY (not above MAX_RETRY_DELAY)"},
		{[]string{"PROJECT=p", "REGION=r", "DEAD_LETTER_RETENTION=forever"}, "DEAD_LETTER_RETENTION"},
		// LOGIN_URL is the issuer, which clients compare as a string.
		{[]string{"PROJECT=p", "REGION=r", "LOGIN_URL=http://auth.impo.com.uy"}, "LOGIN_URL (login's https URL"},
		{[]string{"PROJECT=p", "REGION=r", "LOGIN_URL=auth.impo.com.uy"}, "LOGIN_URL (login's https URL"},
		{[]string{"PROJECT=p", "REGION=r", "LOGIN_URL=https://Auth.impo.com.uy"}, "LOGIN_URL (login's https URL"},
		{[]string{"PROJECT=p", "REGION=r", "LOGIN_URL=https://auth.impo.com.uy:443"}, "LOGIN_URL (login's https URL"},
		{[]string{"PROJECT=p", "REGION=r", "LOGIN_URL=https://auth.impo.com.uy/?x=1"}, "LOGIN_URL (login's https URL"},
		{[]string{"PROJECT=p", "REGION=r", "LOGIN_URL=https://auth.impo.com.uy/#x"}, "LOGIN_URL (login's https URL"},
		{[]string{"PROJECT=p", "REGION=r", "LOGIN_URL=https://ops@auth.impo.com.uy"}, "LOGIN_URL (login's https URL"},
		{[]string{"PROJECT=p", "REGION=r", "LOGIN_URL=https://auth.impo.com.uy/a/../login"}, "LOGIN_URL (login's https URL"},
		{[]string{"PROJECT=p", "REGION=r", "LOGIN_URL=https://auth.impo.com.uy//"}, "LOGIN_URL (login's https URL"},
	}
	for _, tt := range tests {
		out, errs, err := deploySh(t, tt.env, "--dry-run")
		if err == nil || !strings.Contains(errs, tt.want) || out != "" {
			t.Errorf("env %v: err %v, stderr %q, stdout %q; want a failure naming %q before any command", tt.env, err, errs, out, tt.want)
		}
	}
	if _, errs, err := deploySh(t, []string{"PROJECT=p", "REGION=r"}, "--dry-run", "loggin"); err == nil || !strings.Contains(errs, "unknown function loggin") {
		t.Errorf("a misspelled function: %v %q", err, errs)
	}
}

func TestDeploy_Shellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Fatal("shellcheck is not installed (Debian package shellcheck); test.sh installs it")
	}
	out, err := exec.Command(sc, filepath.Join(repoRoot(t), "deploy.sh")).CombinedOutput()
	if err != nil {
		t.Fatalf("shellcheck deploy.sh:\n%s", out)
	}
}

// keyLike names files that must never be uploaded.
var keyLike = regexp.MustCompile(`(^|/)credenciales/|_test\.go$|(^|/)tests/|(^|/)testdata/|^\.git/|\.(pem|key|p12)$|-key\.json$|^deploy\.env$|^\.deploy/`)

// checkoutFiles lists the files of the checkout at root that git tracks or
// would track (untracked, not ignored): the source as a clone has it, plus
// what an engineer is adding.
func checkoutFiles(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files (the upload tests need a git checkout): %v", err)
	}
	var files []string
	seen := map[string]bool{}
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		// A tracked file deleted in the work tree is gone; a file in a merge
		// conflict is listed once per side.
		if info, err := os.Lstat(filepath.Join(root, f)); err == nil && info.Mode().IsRegular() && !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	return files
}

// isDeployedSource is the rule for what the Go buildpack needs, which
// .gcloudignore implements: go.mod, go.sum, the root package and the
// packages under functions/ and shared/, without tests or test data.
// Embedded data comes on top (embeddedFiles).
func isDeployedSource(name string) bool {
	switch {
	case name == "go.mod" || name == "go.sum":
		return true
	case !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go"):
		return false
	case !strings.Contains(name, "/"):
		return true // the root package
	case !strings.HasPrefix(name, "functions/") && !strings.HasPrefix(name, "shared/"):
		return false // cmd/, internal/, tests/: tools and tests, which nothing deployed imports
	}
	return !slices.Contains(strings.Split(name, "/"), "testdata")
}

// embeddedFiles lists, relative to root, the files that the deployed
// packages embed with //go:embed, as go list resolves the directives.
func embeddedFiles(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{$d := .Dir}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}`, ".", "./functions/...", "./shared/...")
	cmd.Dir = root
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list the embedded files: %v\n%s", err, errb.String())
	}
	var files []string
	for _, abs := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, abs)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.ToSlash(rel))
	}
	return files
}

// expectedUpload is what every deploy must send from a checkout holding
// files, and nothing else: the deployed source by rule, and the data it
// embeds.
func expectedUpload(t *testing.T, root string, files []string) []string {
	t.Helper()
	var want []string
	for _, f := range files {
		if isDeployedSource(f) {
			want = append(want, f)
		}
	}
	for _, f := range embeddedFiles(t, root) {
		if !slices.Contains(want, f) {
			want = append(want, f)
		}
	}
	slices.Sort(want)
	return want
}

// Decoys: things that look like keys, settings, binaries, notes and tests,
// planted in the root and in every source folder of a copy of the checkout.
// None may be uploaded, whatever its folder.
var (
	decoysEverywhere = []string{
		"key.json", "credentials.json", "sa_key.json", "application_default_credentials.json",
		"service-account.json", "decoy-key.json", "decoy.pem", "decoy.key", "decoy.p12",
		".env", ".envrc", "id_rsa", "id_rsa.pub", "session-keys", "accounts", "gettoken-key",
		"notes.txt", "x.json", "NOTES.md", "deploy.env",
		"local", "admin", "login", "backend.test", "local.exe", // binaries
		"decoy_test.go", "testdata/decoy.go", "testdata/x.json",
	}
	decoysAtRoot = []string{
		"credenciales/decoy-sa-key.json", ".deploy/login.env.yaml", ".git/config", "bin/local",
		"cmd/decoy/main.go", "internal/decoy/decoy.go", "tests/decoy.go", "docs/decoy.go",
		"vendor/modules.txt", "go.work",
	}
	decoyFolders = []string{"functions/*", "functions/*/*", "shared/*", "shared/*/*", "shared/*/*/*"}
	binaryDecoys = regexp.MustCompile(`(^|/)(local|admin|login|backend\.test|local\.exe)$`)
)

// plantedCopy copies the checkout's files into a new folder, plants the
// decoys in it, and returns the folder and what a deploy from it must
// upload.
func plantedCopy(t *testing.T) (dir string, want []string) {
	t.Helper()
	root := repoRoot(t)
	files := checkoutFiles(t, root)
	want = expectedUpload(t, root, files)
	dir = t.TempDir()
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		info, _ := os.Stat(filepath.Join(root, f))
		writeFile(t, filepath.Join(dir, f), data, info.Mode().Perm())
	}
	var planted []string
	planted = append(planted, decoysAtRoot...)
	folders := []string{"."}
	for _, pattern := range decoyFolders {
		matches, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, m := range matches {
			if info, err := os.Stat(m); err == nil && info.IsDir() {
				rel, _ := filepath.Rel(dir, m)
				folders = append(folders, filepath.ToSlash(rel))
			}
		}
	}
	for _, folder := range folders {
		for _, d := range decoysEverywhere {
			planted = append(planted, path.Join(folder, d))
		}
	}
	for _, p := range planted {
		if slices.Contains(want, p) {
			t.Fatalf("decoy %s is a source file; rename the decoy", p)
		}
		content := []byte(`{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----decoy"}`)
		switch {
		case strings.HasSuffix(p, "_test.go") && !strings.Contains(p, "testdata/"):
			// A test of the folder's own package, so that go list still
			// loads it: deploy.sh lists each function's packages.
			content = []byte("package " + packageName(t, filepath.Join(dir, path.Dir(p))) + "\n")
		case strings.HasSuffix(p, ".go"):
			content = []byte("package decoy\n")
		case binaryDecoys.MatchString(p):
			content = append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 4096)...)
		}
		writeFile(t, filepath.Join(dir, p), content, 0o600)
	}
	return dir, want
}

// packageName is the package of the Go files in dir ("decoy" if it has
// none).
func packageName(t *testing.T, dir string) string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), n, nil, parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		return f.Name.Name
	}
	return "decoy"
}

func writeFile(t *testing.T, name string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, perm); err != nil {
		t.Fatal(err)
	}
}

// TestDeploy_UploadIsExactlyTheSource runs the real gcloud's file chooser on a
// copy of the checkout full of decoys: .gcloudignore must let through the
// deployed source and its embedded data, and nothing else.
func TestDeploy_UploadIsExactlyTheSource(t *testing.T) {
	dir, want := plantedCopy(t)
	cmd := exec.Command("gcloud", "meta", "list-files-for-upload", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CLOUDSDK_CONFIG="+t.TempDir())
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gcloud meta list-files-for-upload: %v\n%s", err, errb.String())
	}
	files := uploadedFiles(t, dir, strings.Split(strings.TrimSpace(string(out)), "\n"))
	if diff := cmp.Diff(want, files); diff != "" {
		t.Errorf("the upload is not exactly the source (.gcloudignore; embedded data is re-included by name) (-want +got):\n%s", diff)
	}
	for _, f := range files {
		if keyLike.MatchString(f) {
			t.Errorf("would upload %s", f)
		}
	}
	for _, must := range []string{"go.mod", "go.sum", "backend.go", "shared/document/schema.json"} {
		if !slices.Contains(files, must) {
			t.Errorf("would not upload %s, which the build needs", must)
		}
	}
	for _, pkg := range []string{"functions/login", "functions/gettoken", "functions/validate", "shared/session"} {
		if !slices.ContainsFunc(files, func(f string) bool { return path.Dir(f) == pkg && strings.HasSuffix(f, ".go") }) {
			t.Errorf("would upload no Go file of %s, which the build needs", pkg)
		}
	}

	// The buildpack builds the root package from the upload alone: every
	// package it imports, and every file they embed, must be there.
	build := t.TempDir()
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(build, f), data, 0o644)
	}
	list := exec.Command("go", "list", "-deps", ".")
	list.Dir = build
	list.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off", "GOPROXY=off")
	var listErr bytes.Buffer
	list.Stderr = &listErr
	if err := list.Run(); err != nil {
		t.Errorf("the root package does not load from the upload alone: %v\n%s", err, listErr.String())
	}
}

// uploadedFiles keeps the regular files of names (relative to dir), sorted:
// gcloud may list or zip folders that it then leaves empty.
func uploadedFiles(t *testing.T, dir string, names []string) []string {
	t.Helper()
	var files []string
	for _, n := range names {
		n = filepath.ToSlash(filepath.Clean(n))
		if info, err := os.Stat(filepath.Join(dir, n)); err == nil && !info.IsDir() {
			files = append(files, n)
		}
	}
	slices.Sort(files)
	return files
}

// TestDeploy_BuildOutputsStayOutOfGit: what go build writes is ignored, and
// no tracked file is an executable.
func TestDeploy_BuildOutputsStayOutOfGit(t *testing.T) {
	root := repoRoot(t)
	outputs := []string{"local", "admin", "bin/local", "backend.test", "shared/session/session.test", "local.exe", "deploy.env", ".deploy/login.env.yaml"}
	cmds, _ := filepath.Glob(filepath.Join(root, "cmd", "*", "main.go"))
	for _, c := range cmds {
		outputs = append(outputs, filepath.Base(filepath.Dir(c))) // go build ./cmd/<name> writes ./<name>
	}
	for _, o := range outputs {
		cmd := exec.Command("git", "check-ignore", "-q", "--no-index", o)
		cmd.Dir = root
		if err := cmd.Run(); err != nil {
			t.Errorf("%s is not ignored by .gitignore (git check-ignore: %v)", o, err)
		}
	}
	for _, f := range checkoutFiles(t, root) {
		head := make([]byte, 4)
		file, err := os.Open(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.ReadFull(file, head)
		file.Close()
		if isExecutable(head[:n]) {
			t.Errorf("%s is a compiled program; build outputs stay out of git", f)
		}
	}
}

// isExecutable recognises ELF, Mach-O and PE (Windows) programs by their
// first bytes.
func isExecutable(head []byte) bool {
	for _, magic := range [][]byte{{0x7f, 'E', 'L', 'F'}, {0xcf, 0xfa, 0xed, 0xfe}, {0xce, 0xfa, 0xed, 0xfe}, {0xca, 0xfe, 0xba, 0xbe}, {'M', 'Z'}} {
		if bytes.HasPrefix(head, magic) {
			return true
		}
	}
	return false
}

// fakeCloud stands in for the Google APIs that setup and a deploy touch:
// it keeps what gcloud creates (service accounts, topics, subscriptions,
// secrets, Firestore databases, functions with their Eventarc triggers,
// log-based metrics) and every IAM policy gcloud sets, and records each
// request, so that a test can check the requests that gcloud itself built.
type fakeCloud struct {
	t        *testing.T
	mu       sync.Mutex
	objects  map[string]map[string]any // by resource name: "projects/impo-test/topics/documentos"
	policies map[string]map[string]any // IAM policies, by resource name (see iamResource)
	requests []recorded
	uploads  [][]byte
	url      string
}

type recorded struct {
	Method, Path string
	Body         map[string]any
}

func newFakeCloud(t *testing.T) *fakeCloud {
	return &fakeCloud{t: t, objects: map[string]map[string]any{}, policies: map[string]map[string]any{}}
}

// iamResource names the resource of an IAM policy request: the path
// without its version and method, service accounts by email alone (gcloud
// may write their project as "-").
func iamResource(p string) string {
	_, p, _ = strings.Cut(strings.TrimPrefix(p, "/"), "/") // after the API version
	p, _, _ = strings.Cut(p, ":")
	if i := strings.Index(p, "/serviceAccounts/"); i >= 0 {
		return p[i+1:]
	}
	return p
}

// grant is one member's role on one resource, under a condition
// expression ("" for none).
type grant struct{ Resource, Role, Member, Condition string }

func (g grant) String() string {
	s := g.Resource + " " + g.Role + " " + g.Member
	if g.Condition != "" {
		s += " if " + g.Condition
	}
	return s
}

// grants flattens every IAM policy the fake holds.
func (f *fakeCloud) grants() []grant {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []grant
	for res, pol := range f.policies {
		bindings, _ := pol["bindings"].([]any)
		for _, b := range bindings {
			b, _ := b.(map[string]any)
			cond, _ := b["condition"].(map[string]any)
			expr, _ := cond["expression"].(string)
			members, _ := b["members"].([]any)
			for _, m := range members {
				out = append(out, grant{res, fmt.Sprint(b["role"]), fmt.Sprint(m), expr})
			}
		}
	}
	return out
}

// seedPolicy gives resource the bindings of grants, as an earlier setup or
// an operator left them.
func (f *fakeCloud) seedPolicy(grants ...grant) {
	for _, g := range grants {
		pol := f.policies[g.Resource]
		if pol == nil {
			pol = map[string]any{"version": 1, "etag": "BwU="}
			f.policies[g.Resource] = pol
		}
		b := map[string]any{"role": g.Role, "members": []any{g.Member}}
		if g.Condition != "" {
			b["condition"] = map[string]any{"expression": g.Condition, "title": "seeded"}
			pol["version"] = 3
		}
		bindings, _ := pol["bindings"].([]any)
		pol["bindings"] = append(bindings, b)
	}
}

func (f *fakeCloud) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	json.Unmarshal(raw, &body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, recorded{r.Method, r.URL.Path, body})
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	notFound := func() {
		reply(404, map[string]any{"error": map[string]any{"code": 404, "status": "NOT_FOUND", "message": "not found"}})
	}
	// done is a finished long-running operation on Firestore database db.
	done := func(db, typ string, v map[string]any) map[string]any {
		resp := map[string]any{"@type": typ}
		for k, x := range v {
			resp[k] = x
		}
		return map[string]any{"name": db + "/operations/op", "done": true, "response": resp}
	}
	op := func(fn map[string]any) map[string]any {
		return map[string]any{"name": "projects/impo-test/locations/r/operations/op", "done": true,
			"metadata": map[string]any{"@type": "type.googleapis.com/google.cloud.functions.v2.OperationMetadata", "stages": []any{}},
			"response": fn}
	}
	// get answers a GET of a kept object, or 404.
	get := func(name string) {
		if obj, ok := f.objects[name]; ok {
			reply(200, obj)
		} else {
			notFound()
		}
	}
	p := r.URL.Path
	name := strings.TrimPrefix(p, "/v1/")
	metric := "metrics/" + path.Base(p) // a log-based metric, by its name
	switch {
	case r.Method == "PUT" && p == "/upload":
		f.uploads = append(f.uploads, raw)
		reply(200, map[string]any{})
	case strings.HasSuffix(p, ":generateUploadUrl"):
		reply(200, map[string]any{"uploadUrl": f.url + "/upload", "storageSource": map[string]any{"bucket": "b", "object": "o"}})
	case strings.HasSuffix(p, "/runtimes"):
		reply(200, map[string]any{"runtimes": []any{map[string]any{"name": "go126", "stage": "GA", "environment": "GEN_2"}}})
	case strings.HasSuffix(p, ":getIamPolicy"):
		pol := f.policies[iamResource(p)]
		if pol == nil {
			pol = map[string]any{"version": 1, "etag": "BwU="}
		}
		reply(200, pol)
	case strings.HasSuffix(p, ":setIamPolicy"):
		pol, _ := body["policy"].(map[string]any)
		f.policies[iamResource(p)] = pol
		reply(200, pol)
	case strings.HasSuffix(p, "/services:batchEnable"):
		reply(200, map[string]any{"name": "operations/enable", "done": true,
			"response": map[string]any{"@type": "type.googleapis.com/google.api.serviceusage.v1.BatchEnableServicesResponse"}})
	case strings.Contains(p, "/services/") && strings.HasPrefix(p, "/v1/projects/"):
		reply(200, map[string]any{"state": "ENABLED"})
	case strings.HasSuffix(p, "/defaultServiceAccount"):
		reply(200, map[string]any{"serviceAccountEmail": "projects/impo-test/serviceAccounts/1@cloudbuild.gserviceaccount.com"})
	case p == "/v1/projects/impo-test":
		reply(200, map[string]any{"projectId": "impo-test", "projectNumber": "123"})
	case strings.Contains(p, "/operations/"):
		reply(200, op(nil))
	case strings.Contains(p, "/triggers/"):
		get(name)
	case strings.Contains(p, "/subscriptions/"):
		switch r.Method {
		case "PUT":
			body["name"] = name
			f.objects[name] = body
		case "PATCH": // the fields of the mask, from the request's subscription
			sub, _ := body["subscription"].(map[string]any)
			mask, _ := body["updateMask"].(string)
			if obj := f.objects[name]; obj != nil {
				for field := range strings.SplitSeq(mask, ",") {
					obj[field] = sub[field]
				}
			}
		}
		get(name)
	case strings.HasPrefix(p, "/v2/projects/impo-test/metrics"):
		switch r.Method {
		case "POST":
			metric = "metrics/" + fmt.Sprint(body["name"])
			f.objects[metric] = body
		case "PUT":
			if f.objects[metric] != nil {
				f.objects[metric] = body
			}
		}
		get(metric)
	case strings.Contains(p, "/serviceAccounts"):
		if r.Method == "POST" {
			id, _ := body["accountId"].(string)
			email := id + "@impo-test.iam.gserviceaccount.com"
			sa := map[string]any{"name": "projects/impo-test/serviceAccounts/" + email, "email": email, "projectId": "impo-test"}
			f.objects["serviceAccounts/"+email] = sa
			reply(200, sa)
			return
		}
		get("serviceAccounts/" + p[strings.LastIndex(p, "/")+1:])
	case strings.Contains(p, "/topics/"):
		if r.Method == "PUT" {
			f.objects[name] = map[string]any{"name": name}
		}
		get(name)
	case strings.HasSuffix(p, ":addVersion"): // a secret's first version, as setup gives clients
		secret := strings.TrimSuffix(name, ":addVersion")
		if f.objects[secret] == nil {
			notFound()
			return
		}
		version := map[string]any{"name": secret + "/versions/1", "state": "ENABLED", "payload": body["payload"]}
		f.objects[version["name"].(string)] = version
		reply(200, map[string]any{"name": version["name"], "state": "ENABLED"})
	case strings.Contains(p, "/secrets"):
		if r.Method == "POST" {
			name += "/" + r.URL.Query().Get("secretId")
			f.objects[name] = map[string]any{"name": name, "replication": map[string]any{"automatic": map[string]any{}}}
		}
		get(name)
	case strings.Contains(p, "/collectionGroups/"):
		db, _, _ := strings.Cut(name, "/collectionGroups/")
		reply(200, done(db, "type.googleapis.com/google.firestore.admin.v1.Field", map[string]any{"name": name}))
	case strings.Contains(p, "/databases"):
		if r.Method == "POST" {
			name += "/" + r.URL.Query().Get("databaseId")
			db := map[string]any{"name": name, "type": "FIRESTORE_NATIVE", "locationId": body["locationId"]}
			f.objects[name] = db
			reply(200, done(name, "type.googleapis.com/google.firestore.admin.v1.Database", db))
			return
		}
		get(name)
	case strings.Contains(p, "/functions"):
		name := p[strings.LastIndex(p, "/")+1:]
		if r.Method == "POST" {
			name = r.URL.Query().Get("functionId")
		}
		switch r.Method {
		case "GET":
			get("functions/" + name)
		case "POST", "PATCH":
			fn := body
			fn["state"], fn["environment"] = "ACTIVE", "GEN_2"
			location, _, _ := strings.Cut(strings.TrimPrefix(p, "/v2/"), "/functions")
			sc, _ := fn["serviceConfig"].(map[string]any)
			if sc != nil {
				sc["uri"] = "https://" + name + ".example"
				sc["service"] = location + "/services/" + name
			}
			// Cloud Functions makes the function's Eventarc trigger, which makes
			// its push subscription to the topic; Eventarc names both.
			if et, _ := fn["eventTrigger"].(map[string]any); et != nil {
				trigger, sub := location+"/triggers/"+name+"-381", triggerSubscription(name)
				et["trigger"] = trigger
				f.objects[trigger] = map[string]any{"name": trigger,
					"transport": map[string]any{"pubsub": map[string]any{"topic": et["pubsubTopic"], "subscription": sub}}}
				if f.objects[sub] == nil {
					f.objects[sub] = map[string]any{"name": sub, "topic": et["pubsubTopic"], "ackDeadlineSeconds": 600,
						"pushConfig": map[string]any{"pushEndpoint": "https://" + name + ".example"}}
				}
			}
			f.objects["functions/"+name] = fn
			reply(200, op(fn))
		}
	default:
		f.t.Logf("unanswered: %s %s", r.Method, p)
		notFound()
	}
}

// triggerSubscription names the Pub/Sub subscription that Eventarc makes
// for the trigger of function fn (in the fake).
func triggerSubscription(fn string) string {
	return "projects/impo-test/subscriptions/eventarc-southamerica-east1-" + fn + "-381-sub-042"
}

// since returns the requests recorded after the first n.
func (f *fakeCloud) since(n int) []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests[n:])
}

// count is how many requests the fake has recorded.
func (f *fakeCloud) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

// created returns the body of the CreateFunction request for name.
func (f *fakeCloud) created(name string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.requests {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/functions") && r.Body["name"] == "projects/impo-test/locations/southamerica-east1/functions/"+name {
			return r.Body
		}
	}
	return nil
}

// creations lists the create requests among requests, as "METHOD path".
func creations(requests []recorded) []string {
	var out []string
	for _, r := range requests {
		switch {
		case r.Method == "POST" && (strings.HasSuffix(r.Path, "/serviceAccounts") || strings.HasSuffix(r.Path, "/secrets") ||
			strings.HasSuffix(r.Path, "/databases") || strings.HasSuffix(r.Path, "/metrics")),
			r.Method == "PUT" && (strings.Contains(r.Path, "/topics/") || strings.Contains(r.Path, "/subscriptions/")):
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// updates lists the update requests among requests (subscriptions and
// log-based metrics), as "METHOD path".
func updates(requests []recorded) []string {
	var out []string
	for _, r := range requests {
		if r.Method == "PATCH" && strings.Contains(r.Path, "/subscriptions/") || r.Method == "PUT" && strings.Contains(r.Path, "/metrics/") {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// gcloudEnv points the real gcloud at the fake for every API a deploy uses.
func gcloudEnv(t *testing.T, url string) []string {
	token := filepath.Join(t.TempDir(), "token")
	os.WriteFile(token, []byte("dummy-access-token"), 0o600)
	env := []string{"CLOUDSDK_CONFIG=" + t.TempDir(), "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=" + token, "CLOUDSDK_CORE_DISABLE_PROMPTS=1"}
	for _, api := range []string{"CLOUDFUNCTIONS", "RUN", "SERVICEUSAGE", "CLOUDBUILD", "ARTIFACTREGISTRY", "CLOUDRESOURCEMANAGER",
		"IAM", "PUBSUB", "EVENTARC", "SECRETMANAGER", "FIRESTORE", "LOGGING"} {
		env = append(env, "CLOUDSDK_API_ENDPOINT_OVERRIDES_"+api+"="+url+"/")
	}
	return env
}

// The project as an earlier version of setup left it, with an operator's
// own grants beside.
var (
	earlierSetup = []grant{
		{"projects/impo-test", "roles/datastore.user", "serviceAccount:login-fn@impo-test.iam.gserviceaccount.com", ""},
		{"projects/impo-test", "roles/datastore.user", "serviceAccount:gettoken-fn@impo-test.iam.gserviceaccount.com", ""},
		{"projects/impo-test", "roles/datastore.user", "serviceAccount:validate-fn@impo-test.iam.gserviceaccount.com", ""},
		{"projects/impo-test", "roles/eventarc.eventReceiver", "serviceAccount:validate-fn@impo-test.iam.gserviceaccount.com", ""},
		{"projects/impo-test/secrets/session-keys", "roles/secretmanager.secretAccessor", "serviceAccount:login-fn@impo-test.iam.gserviceaccount.com", ""},
		{"projects/impo-test/secrets/session-keys", "roles/secretmanager.secretAccessor", "serviceAccount:gettoken-fn@impo-test.iam.gserviceaccount.com", ""},
		{"projects/impo-test/secrets/session-keys", "roles/secretmanager.secretAccessor", "serviceAccount:validate-fn@impo-test.iam.gserviceaccount.com", ""},
	}
	operatorGrants = []grant{
		{"projects/impo-test", "roles/owner", "user:ops@impo.com.uy", ""},
		// Given to gettoken-fn by hand in the adc days: setup warns, keeps it.
		{"projects/impo-test", "roles/storage.objectViewer", "serviceAccount:gettoken-fn@impo-test.iam.gserviceaccount.com", ""},
		{"projects/impo-test", "roles/datastore.viewer", "user:ops@impo.com.uy", `resource.name=="projects/impo-test/databases/sessions"`},
	}
	earlierObjects = []string{
		"serviceAccounts/login-fn@impo-test.iam.gserviceaccount.com", "serviceAccounts/gettoken-fn@impo-test.iam.gserviceaccount.com",
		"serviceAccounts/validate-fn@impo-test.iam.gserviceaccount.com", "projects/impo-test/topics/documentos",
		"projects/impo-test/secrets/session-keys", "projects/impo-test/secrets/accounts", "projects/impo-test/databases/(default)",
	}
)

// TestDeploy_WithTheRealGcloud runs setup and then a deploy of every
// function through deploy.sh, and the real gcloud it calls, against a
// local server standing in for the Google APIs, on a project that an
// earlier version set up. It checks the requests that gcloud itself built:
// the IAM grants are exactly the grants table, the functions' settings
// are their rows'.
func TestDeploy_WithTheRealGcloud(t *testing.T) {
	if _, err := exec.LookPath("gcloud"); err != nil {
		t.Fatal("the Google Cloud CLI (gcloud) is needed")
	}
	fake := newFakeCloud(t)
	srv := httptest.NewServer(fake)
	defer srv.Close()
	fake.url = srv.URL
	fake.seedPolicy(earlierSetup...)
	fake.seedPolicy(operatorGrants...)
	for _, name := range earlierObjects {
		fake.objects[name] = map[string]any{"name": name}
	}
	env := gcloudEnv(t, srv.URL)

	// From a copy full of decoys, so that the upload is checked too.
	dir, wantUpload := plantedCopy(t)
	out, errs, err := deployShIn(t, dir, env, "--settings", "tests/testdata/deploy.env", "setup")
	if err != nil {
		t.Fatalf("deploy.sh setup: %v\nstdout:\n%s\nstderr:\n%s", err, out, errs)
	}
	t.Run("setup grants exactly the table", func(t *testing.T) {
		checkGrants(t, fake.grants(), false)
	})
	t.Run("setup creates only what is missing", func(t *testing.T) {
		want := []string{
			"POST /v1/projects/impo-test/serviceAccounts", "POST /v1/projects/impo-test/serviceAccounts", // vend-pipeline, vend-lector
			"PUT /v1/projects/impo-test/topics/documentos-validos", "PUT /v1/projects/impo-test/topics/documentos-invalidos",
			"PUT /v1/projects/impo-test/topics/documentos-muertos", "PUT /v1/projects/impo-test/subscriptions/documentos-muertos-sub",
			"POST /v1/projects/impo-test/secrets", // clients
			"POST /v1/projects/impo-test/databases", "POST /v1/projects/impo-test/databases",
			"POST /v1/projects/impo-test/databases", "POST /v1/projects/impo-test/databases",
			"POST /v2/projects/impo-test/metrics", "POST /v2/projects/impo-test/metrics", "POST /v2/projects/impo-test/metrics",
			"POST /v2/projects/impo-test/metrics", "POST /v2/projects/impo-test/metrics",
		}
		if diff := cmp.Diff(want, creations(fake.since(0))); diff != "" {
			t.Errorf("creations (-want +got):\n%s", diff)
		}
		for _, name := range []string{"login-state", "sessions", "gettoken-state", "validate-state"} {
			if db := fake.objects["projects/impo-test/databases/"+name]; db == nil || db["locationId"] != "southamerica-east1" {
				t.Errorf("database %s = %v, want it created in the region", name, db)
			}
		}
		for _, sa := range []string{"vend-pipeline", "vend-lector"} {
			if fake.objects["serviceAccounts/"+sa+"@impo-test.iam.gserviceaccount.com"] == nil {
				t.Errorf("vended account %s was not created", sa)
			}
		}
	})
	t.Run("setup keeps the dead letters and counts what validate routes", func(t *testing.T) {
		checkDeadLetterSubscription(t, fake)
		checkMetrics(t, fake)
		if !strings.Contains(out, "# validate is not deployed: its deploy will do this\n") {
			t.Errorf("setup did not leave validate's trigger to its deploy:\n%s", out)
		}
	})
	t.Run("setup creates the clients secret as the empty list, for login alone", func(t *testing.T) {
		v := fake.objects["projects/impo-test/secrets/clients/versions/1"]
		payload, _ := v["payload"].(map[string]any)
		data, err := base64.StdEncoding.DecodeString(fmt.Sprint(payload["data"]))
		if err != nil || strings.TrimSpace(string(data)) != "[]" {
			t.Fatalf("the first version of clients = %v (%q, %v), want []", v, data, err)
		}
		if l, err := clients.Parse(data); err != nil || l.Len() != 0 {
			t.Errorf("login would not read the first version of clients: %v", err)
		}
		var readers []string
		for _, g := range fake.grants() {
			if g.Resource == "projects/impo-test/secrets/clients" {
				readers = append(readers, g.Role+" "+g.Member)
			}
		}
		if diff := cmp.Diff([]string{"roles/secretmanager.secretAccessor serviceAccount:login-fn@impo-test.iam.gserviceaccount.com"}, readers); diff != "" {
			t.Errorf("grants on clients (-want +got):\n%s", diff)
		}
	})
	t.Run("setup warns of a function account's unlisted project role", func(t *testing.T) {
		if !strings.Contains(errs, "WARNING: serviceAccount:gettoken-fn@impo-test.iam.gserviceaccount.com has roles/storage.objectViewer on the project") {
			t.Errorf("no warning of gettoken-fn's storage.objectViewer; stderr:\n%s", errs)
		}
		if strings.Count(errs, "WARNING") != 1 {
			t.Errorf("warnings beyond the one unlisted role:\n%s", errs)
		}
	})

	before := fake.count()
	out, errs, err = deployShIn(t, dir, env, "--settings", "tests/testdata/deploy.env")
	if err != nil {
		t.Fatalf("deploy.sh: %v\nstdout:\n%s\nstderr:\n%s", err, out, errs)
	}
	// --allow-unauthenticated: the HTTP functions authenticate their callers.
	public := []grant{
		{"projects/impo-test/locations/southamerica-east1/services/login", "roles/run.invoker", "allUsers", ""},
		{"projects/impo-test/locations/southamerica-east1/services/gettoken", "roles/run.invoker", "allUsers", ""},
		{"projects/impo-test/locations/southamerica-east1/services/validate-http", "roles/run.invoker", "allUsers", ""},
	}
	t.Run("the deploy adds only the functions' invokers and the trigger's dead letters", func(t *testing.T) {
		checkGrants(t, fake.grants(), true, public...)
	})
	t.Run("the deploy gives validate's trigger its dead letters and backoff", func(t *testing.T) {
		deploy := fake.since(before)
		if diff := cmp.Diff([]string{"PATCH /v1/" + triggerSubscription("validate")}, updates(deploy)); diff != "" {
			t.Fatalf("subscription updates of the deploy (-want +got):\n%s", diff)
		}
		for _, r := range deploy {
			if r.Method == "PATCH" && strings.Contains(r.Path, "/subscriptions/") {
				if diff := cmp.Diff(triggerPatch(), r.Body); diff != "" {
					t.Errorf("the update of the trigger's subscription (-want +got):\n%s", diff)
				}
			}
		}
		checkTriggerSubscription(t, fake)
	})

	type want struct {
		entry, trigger, sa, state string
		env                       map[string]string
	}
	// login's deterministic Cloud Run URL, from the fake's project number:
	// the issuer of all four, and where the verifiers read its keys.
	const issuer = "https://login-123.southamerica-east1.run.app"
	checks := map[string]want{
		"login": {"Login", "http", "login-fn@impo-test.iam.gserviceaccount.com", "login-state",
			map[string]string{"ACCOUNTS_SECRET": "/mnt/accounts/value", "SESSION_KEYS_SECRET": "/mnt/session-keys/value",
				"CLIENTS_SECRET": "/mnt/clients/value", "CORS_ALLOWED_ORIGINS": "https://portal.impo.com.uy,https://admin.impo.com.uy"}},
		"gettoken": {"GetToken", "http", "gettoken-fn@impo-test.iam.gserviceaccount.com", "gettoken-state",
			map[string]string{"GETTOKEN_SOURCE": "impersonate", "SESSION_JWKS_URL": issuer + "/jwks"}},
		"validate": {"Validate", "topic", "validate-fn@impo-test.iam.gserviceaccount.com", "validate-state",
			map[string]string{"VALIDATE_VALID_TOPIC": "documentos-validos", "VALIDATE_INVALID_TOPIC": "documentos-invalidos",
				"SESSION_JWKS_URL": issuer + "/jwks"}},
		"validate-http": {"ValidateHTTP", "http", "validate-fn@impo-test.iam.gserviceaccount.com", "validate-state",
			map[string]string{"SESSION_JWKS_URL": issuer + "/jwks"}},
	}
	for name, w := range checks {
		t.Run(name, func(t *testing.T) {
			fn := fake.created(name)
			if fn == nil {
				t.Fatalf("no CreateFunction request for %s", name)
			}
			build, _ := fn["buildConfig"].(map[string]any)
			svc, _ := fn["serviceConfig"].(map[string]any)
			if build["runtime"] != "go126" || build["entryPoint"] != w.entry {
				t.Errorf("buildConfig = %v", build)
			}
			if svc["serviceAccountEmail"] != w.sa {
				t.Errorf("service account = %v, want %s", svc["serviceAccountEmail"], w.sa)
			}
			envVars, _ := svc["environmentVariables"].(map[string]any)
			base := map[string]string{"GOOGLE_CLOUD_PROJECT": "impo-test", "SECRETS_SOURCE": "secretmanager",
				"STATE_STORE": "firestore", "FIRESTORE_DATABASE": w.state, "FIRESTORE_SESSIONS_DATABASE": "sessions",
				"TRUSTED_PROXY_HOPS": "1", "LOGIN_ISSUER": issuer}
			for k, v := range w.env {
				base[k] = v
			}
			for k, v := range base {
				if envVars[k] != v {
					t.Errorf("env %s = %v, want %q", k, envVars[k], v)
				}
			}
			// Only login holds the signing keys, in any form.
			volumes := fmt.Sprint(svc["secretVolumes"], svc["secretEnvironmentVariables"])
			if hasKeys := strings.Contains(volumes, "session-keys"); hasKeys != (name == "login") {
				t.Errorf("secrets = %s: session-keys mounted %v, want %v", volumes, hasKeys, name == "login")
			}
			if _, ok := envVars["SESSION_KEYS_SECRET"]; ok != (name == "login") {
				t.Errorf("SESSION_KEYS_SECRET set: %v, want %v", ok, name == "login")
			}
			// Only login reads the registered clients.
			if hasClients := strings.Contains(volumes, "clients"); hasClients != (name == "login") {
				t.Errorf("secrets = %s: clients mounted %v, want %v", volumes, hasClients, name == "login")
			}
			if _, ok := envVars["SESSION_ISSUER"]; ok {
				t.Error("SESSION_ISSUER is set: the function refuses to start with it")
			}
			trigger, _ := fn["eventTrigger"].(map[string]any)
			switch w.trigger {
			case "topic":
				if trigger["pubsubTopic"] != "projects/impo-test/topics/documentos" || trigger["retryPolicy"] != "RETRY_POLICY_RETRY" ||
					trigger["serviceAccountEmail"] != w.sa {
					t.Errorf("event trigger = %v", trigger)
				}
			case "http":
				if trigger != nil {
					t.Errorf("an HTTP function got an event trigger: %v", trigger)
				}
			}
		})
	}
	if name := "gettoken"; fake.created(name) != nil {
		env, _ := fake.created(name)["serviceConfig"].(map[string]any)["environmentVariables"].(map[string]any)
		if !strings.Contains(fmt.Sprint(env["GETTOKEN_POLICY"]), `"service_account": "vend-pipeline@impo-test.iam.gserviceaccount.com"`) {
			t.Errorf("the policy file did not reach GETTOKEN_POLICY: %v", env["GETTOKEN_POLICY"])
		}
	}

	// Setup again, on the deployed project: it creates nothing, brings the
	// dead letters and the metrics up to date, and grants nothing new.
	before = fake.count()
	out, errs, err = deployShIn(t, dir, env, "--settings", "tests/testdata/deploy.env", "setup")
	if err != nil {
		t.Fatalf("deploy.sh setup, again: %v\nstdout:\n%s\nstderr:\n%s", err, out, errs)
	}
	t.Run("setup again changes nothing and keeps the dead letters", func(t *testing.T) {
		again := fake.since(before)
		if got := creations(again); len(got) != 0 {
			t.Errorf("a second setup created %v", got)
		}
		want := []string{"PATCH /v1/projects/impo-test/subscriptions/documentos-muertos-sub", "PATCH /v1/" + triggerSubscription("validate")}
		for _, m := range []string{"valid", "invalid", "too_old", "permanent", "retries"} {
			want = append(want, "PUT /v2/projects/impo-test/metrics/validate_"+m)
		}
		if diff := cmp.Diff(want, updates(again)); diff != "" {
			t.Errorf("updates of a second setup (-want +got):\n%s", diff)
		}
		for _, r := range again {
			if r.Method == "PATCH" && strings.HasPrefix(r.Path, "/v1/"+triggerSubscription("validate")) {
				if diff := cmp.Diff(triggerPatch(), r.Body); diff != "" {
					t.Errorf("setup's update of the trigger's subscription (-want +got):\n%s", diff)
				}
			}
		}
		checkGrants(t, fake.grants(), true, public...)
		checkDeadLetterSubscription(t, fake)
		checkTriggerSubscription(t, fake)
		checkMetrics(t, fake)
	})

	// What was uploaded, for each function in table order: its own
	// packages (no other function's), without secrets or tests, and a
	// root package that imports that function alone.
	rows := functionTable(t, string(mustRead(t, filepath.Join(repoRoot(t), "deploy.sh"))))
	if len(fake.uploads) != len(rows) {
		t.Fatalf("%d source uploads, want one per function (%d)", len(fake.uploads), len(rows))
	}
	for i, upload := range fake.uploads {
		r := rows[i]
		t.Run("the upload of "+r.name, func(t *testing.T) {
			files := unzipped(t, upload)
			for f := range files {
				if keyLike.MatchString(f) {
					t.Errorf("uploaded %s", f)
				}
				if !slices.Contains(wantUpload, f) && f != "backend.go" {
					t.Errorf("uploaded %s, which .gcloudignore keeps out", f)
				}
			}
			want := functionUpload(t, repoRoot(t), r.pkg)
			if diff := cmp.Diff(want, slices.Sorted(maps.Keys(files))); diff != "" {
				t.Errorf("the upload is not exactly go.mod, go.sum, the root package and go list -deps ./%s (-want +got):\n%s", r.pkg, diff)
			}
			checkRootImportsOnly(t, files["backend.go"], r.pkg)
			if f := fake.created(r.name); f != nil {
				build, _ := f["buildConfig"].(map[string]any)
				svc, _ := f["serviceConfig"].(map[string]any)
				if env, _ := build["environmentVariables"].(map[string]any); env["GOOGLE_GOLDFLAGS"] != "-s -w" {
					t.Errorf("build environment = %v, want GOOGLE_GOLDFLAGS=-s -w (a stripped binary)", env)
				}
				got := fmt.Sprint(svc["availableMemory"], " ", svc["availableCpu"], " ", svc["maxInstanceRequestConcurrency"])
				if want := r.memory + " " + r.cpu + " " + r.concurrency; got != want {
					t.Errorf("memory, cpu and concurrency = %s, want the row's %s", got, want)
				}
			}

			// The buildpack builds the upload alone, offline here: every
			// package that the root imports, and every file they embed,
			// must be in it.
			build := t.TempDir()
			for f, data := range files {
				writeFile(t, filepath.Join(build, f), data, 0o644)
			}
			list := exec.Command("go", "list", "-deps", ".")
			list.Dir = build
			list.Env = append(os.Environ(), goEnv(t)...)
			if out, err := list.CombinedOutput(); err != nil {
				t.Errorf("the root package does not load from the upload alone: %v\n%s", err, out)
			}
		})
	}
}

// unzipped returns the regular files of a zip upload, by name. gcloud
// keeps an empty entry for an ignored folder; what matters is that no
// file under it is sent.
func unzipped(t *testing.T, upload []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(upload), int64(len(upload)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name] = data
	}
	return files
}

// functionUpload is what the upload of the function package pkg must hold,
// sorted: go.mod, go.sum, the root package, and the files of every package
// of this module that pkg needs, as go list -deps finds them for the
// platform that Cloud Build builds on, with the data they embed.
func functionUpload(t *testing.T, root, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f",
		`{{if and .Module .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}} {{end}}{{range .CgoFiles}}{{$d}}/{{.}} {{end}}`+
			`{{range .SFiles}}{{$d}}/{{.}} {{end}}{{range .EmbedFiles}}{{$d}}/{{.}} {{end}}{{end}}`, "./"+pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./%s: %v\n%s", pkg, err, errb.String())
	}
	want := []string{"go.mod", "go.sum", "backend.go"}
	for _, abs := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, abs)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, filepath.ToSlash(rel))
	}
	slices.Sort(want)
	return want
}

// checkRootImportsOnly checks that the root package of an upload, src,
// imports the function package pkg and the Functions Framework's
// functions package (by which the buildpack knows that entry points
// register themselves), and nothing else.
func checkRootImportsOnly(t *testing.T, src []byte, pkg string) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "backend.go", src, parser.ImportsOnly)
	if err != nil {
		t.Fatalf("the upload's backend.go: %v\n%s", err, src)
	}
	var imports []string
	for _, imp := range f.Imports {
		imports = append(imports, strings.Trim(imp.Path.Value, `"`))
	}
	want := []string{"github.com/GoogleCloudPlatform/functions-framework-go/functions", "impo.com.uy/copetes/backend/" + pkg}
	if f.Name.Name != "backend" || !slices.Equal(imports, want) {
		t.Errorf("the upload's root package %s imports %v, want %v only", f.Name.Name, imports, want)
	}
}

// The dead-letter settings of the fixture (deploy.sh's defaults).
const (
	deadLetterTopic = "projects/impo-test/topics/documentos-muertos"
	pubsubAgent     = "serviceAccount:service-123@gcp-sa-pubsub.iam.gserviceaccount.com" // the fake project's number is 123
)

// triggerPatch is the update of a trigger's subscription that gives it its
// dead-letter topic, its delivery attempts and its backoff, as gcloud sends
// it.
func triggerPatch() map[string]any {
	return map[string]any{
		"subscription": map[string]any{
			"name":             triggerSubscription("validate"),
			"deadLetterPolicy": map[string]any{"deadLetterTopic": deadLetterTopic, "maxDeliveryAttempts": float64(10)},
			"retryPolicy":      map[string]any{"minimumBackoff": "10s", "maximumBackoff": "600s"},
		},
		"updateMask": "deadLetterPolicy,retryPolicy",
	}
}

// checkTriggerSubscription: validate's trigger sends what it fails to
// deliver 10 times to the dead-letter topic, and backs off between attempts.
func checkTriggerSubscription(t *testing.T, fake *fakeCloud) {
	t.Helper()
	sub := fake.objects[triggerSubscription("validate")]
	want := triggerPatch()["subscription"].(map[string]any)
	for _, field := range []string{"deadLetterPolicy", "retryPolicy"} {
		if diff := cmp.Diff(want[field], sub[field]); diff != "" {
			t.Errorf("the trigger's subscription: %s (-want +got):\n%s", field, diff)
		}
	}
}

// checkDeadLetterSubscription: the dead letters wait in a subscription of
// the dead-letter topic that never expires, for a week.
func checkDeadLetterSubscription(t *testing.T, fake *fakeCloud) {
	t.Helper()
	sub := fake.objects["projects/impo-test/subscriptions/documentos-muertos-sub"]
	want := map[string]any{"topic": deadLetterTopic, "ackDeadlineSeconds": float64(600), "messageRetentionDuration": "604800s",
		"expirationPolicy": map[string]any{}} // no ttl: never expires
	for k, v := range want {
		if diff := cmp.Diff(v, sub[k]); diff != "" {
			t.Errorf("the dead-letter subscription: %s (-want +got):\n%s", k, diff)
		}
	}
}

// countedLines are the log-based metrics that setup makes, with their
// filters: the log lines validate writes, one per event, are this contract.
var countedLines = map[string]string{
	"validate_valid":     `resource.type="cloud_run_revision" AND resource.labels.service_name="validate" AND jsonPayload.message="document validated" AND jsonPayload.outcome="valid"`,
	"validate_invalid":   `resource.type="cloud_run_revision" AND resource.labels.service_name="validate" AND jsonPayload.message="document validated" AND jsonPayload.reason="invalid"`,
	"validate_too_old":   `resource.type="cloud_run_revision" AND resource.labels.service_name="validate" AND jsonPayload.message="document validated" AND jsonPayload.reason="too-old"`,
	"validate_permanent": `resource.type="cloud_run_revision" AND resource.labels.service_name="validate" AND jsonPayload.message="document validated" AND (jsonPayload.reason="too-large" OR jsonPayload.reason="unreadable")`,
	"validate_retries":   `resource.type="cloud_run_revision" AND resource.labels.service_name="validate" AND jsonPayload.message="delivery failed; Pub/Sub will retry"`,
}

// checkMetrics: the log-based metrics of the fake are exactly countedLines,
// each described.
func checkMetrics(t *testing.T, fake *fakeCloud) {
	t.Helper()
	got := map[string]string{}
	for name, obj := range fake.objects {
		if metric, ok := strings.CutPrefix(name, "metrics/"); ok {
			got[metric] = fmt.Sprint(obj["filter"])
			if d := fmt.Sprint(obj["description"]); !strings.HasPrefix(d, "IMPO validate: ") {
				t.Errorf("metric %s is described as %q", metric, d)
			}
		}
	}
	if diff := cmp.Diff(countedLines, got); diff != "" {
		t.Errorf("log-based metrics (-want +got):\n%s", diff)
	}
}

// checkGrants checks that the IAM policies of the fake cloud, got, are
// exactly the operator's own grants, the grants table of deploy.sh under
// the fixture settings, and extra; and, whatever the table says, the rules
// of the trust model.
func checkGrants(t *testing.T, got []grant, deployed bool, extra ...grant) {
	t.Helper()
	want := append(slices.Clone(operatorGrants), tableGrants(t, deployed)...)
	want = append(want, extra...)
	sortGrants := func(gs []grant) []string {
		var s []string
		for _, g := range gs {
			s = append(s, g.String())
		}
		slices.Sort(s)
		return slices.Compact(s)
	}
	if diff := cmp.Diff(sortGrants(want), sortGrants(got)); diff != "" {
		t.Errorf("the IAM grants are not exactly the table (-want +got):\n%s", diff)
	}

	const login, gettoken, validate = "serviceAccount:login-fn@impo-test.iam.gserviceaccount.com",
		"serviceAccount:gettoken-fn@impo-test.iam.gserviceaccount.com", "serviceAccount:validate-fn@impo-test.iam.gserviceaccount.com"
	functionAccount := func(m string) bool { return m == login || m == gettoken || m == validate }
	for _, g := range got {
		switch {
		case g.Resource == "projects/impo-test/secrets/session-keys" && g.Member != login:
			t.Errorf("%s: only login may read the signing keys", g)
		case g.Resource == "projects/impo-test" && functionAccount(g.Member) && g.Condition == "" &&
			g.String() != "projects/impo-test roles/eventarc.eventReceiver "+validate &&
			g.String() != "projects/impo-test roles/storage.objectViewer "+gettoken: // the operator's, warned of
			t.Errorf("%s: a project-wide grant to a function account", g)
		case strings.HasPrefix(g.Role, "roles/datastore.") && functionAccount(g.Member):
			db := strings.TrimSuffix(strings.TrimPrefix(g.Condition, `resource.name=="projects/impo-test/databases/`), `"`)
			own := map[string]string{login: "login-state", gettoken: "gettoken-state", validate: "validate-state"}[g.Member]
			switch {
			case g.Condition == "" || db == g.Condition:
				t.Errorf("%s: Firestore access not narrowed to one database", g)
			case db == "sessions" && g.Member != login && g.Role != "roles/datastore.viewer":
				t.Errorf("%s: only login writes revocations", g)
			case db != "sessions" && db != own:
				t.Errorf("%s: a function reaches another's state", g)
			}
		case g.Role == "roles/iam.serviceAccountTokenCreator":
			if g.Member != gettoken || !strings.HasPrefix(g.Resource, "serviceAccounts/") || strings.Contains(g.Resource, "-fn@") {
				t.Errorf("%s: only gettoken mints tokens, and only as a vended account", g)
			}
		case g.Member == pubsubAgent:
			if g.String() != deadLetterTopic+" roles/pubsub.publisher "+pubsubAgent &&
				g.String() != triggerSubscription("validate")+" roles/pubsub.subscriber "+pubsubAgent {
				t.Errorf("%s: the Pub/Sub service agent only moves dead letters", g)
			}
		case strings.Contains(g.Resource, "documentos-muertos"):
			t.Errorf("%s: only the Pub/Sub service agent reaches the dead letters", g)
		}
	}
}

// tableGrants is what the grants table of deploy.sh grants under the
// fixture settings (tests/testdata/deploy.env and its policy), as IAM
// policy bindings: at setup, and once the functions are deployed too.
func tableGrants(t *testing.T, deployed bool) []grant {
	t.Helper()
	settings := map[string]string{"GETTOKEN_SOURCE": "impersonate", "VALID_TOPIC": "documentos-validos", "INVALID_TOPIC": "documentos-invalidos",
		"DEAD_LETTER_TOPIC": "documentos-muertos"}
	var policy struct {
		Roles map[string]struct {
			ServiceAccount string `json:"service_account"`
		} `json:"roles"`
	}
	if err := json.Unmarshal(mustRead(t, "testdata/gettoken-policy.json"), &policy); err != nil {
		t.Fatal(err)
	}
	var out []grant
	for _, g := range grantTable(t, string(mustRead(t, filepath.Join(repoRoot(t), "deploy.sh")))) {
		if k, v, ok := strings.Cut(g.when, "="); g.when == "retired" || ok && settings[k] != v {
			continue
		}
		member := "serviceAccount:" + g.account + "-fn@impo-test.iam.gserviceaccount.com"
		if g.account == "pubsub" {
			member = pubsubAgent
		}
		kind, id, _ := strings.Cut(g.resource, ":")
		switch kind {
		case "secret":
			out = append(out, grant{"projects/impo-test/secrets/" + id, g.role, member, ""})
		case "topic":
			out = append(out, grant{"projects/impo-test/topics/" + settings[id], g.role, member, ""})
		case "database":
			out = append(out, grant{"projects/impo-test", g.role, member, `resource.name=="projects/impo-test/databases/` + id + `"`})
		case "project":
			out = append(out, grant{"projects/impo-test", g.role, member, ""})
		case "function":
			if !deployed {
				continue
			}
			out = append(out, grant{"projects/impo-test/locations/southamerica-east1/services/" + id, g.role, member, ""})
		case "trigger":
			if !deployed {
				continue
			}
			out = append(out, grant{triggerSubscription(id), g.role, member, ""})
		case "vended":
			for _, r := range policy.Roles {
				out = append(out, grant{"serviceAccounts/" + r.ServiceAccount, g.role, member, ""})
			}
		default:
			t.Fatalf("grant row with resource %q", g.resource)
		}
	}
	return out
}

// grantRow is one row of the grants table in deploy.sh.
type grantRow struct{ account, role, resource, when, why string }

// grantTable parses the grants table from the text of deploy.sh.
func grantTable(t *testing.T, script string) []grantRow {
	t.Helper()
	var rows []grantRow
	for _, line := range tableLines(t, script, "grants_table") {
		f := strings.Fields(line)
		if len(f) < 5 {
			t.Fatalf("short grant row: %q", line)
		}
		rows = append(rows, grantRow{f[0], f[1], f[2], f[3], strings.Join(f[4:], " ")})
	}
	return rows
}

// tableLines returns the rows of the table that deploy.sh assigns to
// variable, without comments and blank lines.
func tableLines(t *testing.T, script, variable string) []string {
	t.Helper()
	open, end := "\n"+variable+"='\n", "\n'\n"
	i := strings.Index(script, open)
	if i < 0 {
		t.Fatalf("deploy.sh has no %q", strings.TrimSpace(open))
	}
	body := script[i+len(open):]
	body = body[:strings.Index(body, end)]
	var lines []string
	for _, line := range strings.Split(body, "\n") {
		if f := strings.Fields(line); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		t.Fatalf("deploy.sh's %s is empty", variable)
	}
	return lines
}

// functionRow is one row of the function table in deploy.sh.
type functionRow struct {
	name, pkg, entry, trigger, account, sessions, state, memory, cpu, concurrency, timeout, min, max, ingress string
	env                                                                                                       []string
}

// functionTable parses the function table from the text of deploy.sh.
func functionTable(t *testing.T, script string) []functionRow {
	t.Helper()
	var rows []functionRow
	for _, line := range tableLines(t, script, "functions_table") {
		f := strings.Fields(line)
		if len(f) < 14 {
			t.Fatalf("short table row: %q", line)
		}
		rows = append(rows, functionRow{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12], f[13], f[14:]})
	}
	return rows
}

// TestDeploy_OneTableDrivesEveryFunction: each function of deploy.sh is
// one row of its table, and the dry run deploys exactly the rows, each
// with its row's settings.
func TestDeploy_OneTableDrivesEveryFunction(t *testing.T) {
	script, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy.sh"))
	if err != nil {
		t.Fatal(err)
	}
	rows := functionTable(t, string(script))
	root, err := parser.ParseFile(token.NewFileSet(), filepath.Join(repoRoot(t), "backend.go"), nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		// cmd/local serves what the checkout's root package imports: every
		// deployed function, so that it runs locally as deployed.
		if !slices.ContainsFunc(root.Imports, func(s *ast.ImportSpec) bool { return s.Path.Value == `"impo.com.uy/copetes/backend/`+r.pkg+`"` }) {
			t.Errorf("%s deploys %s, which backend.go does not import: cmd/local would not serve it", r.name, r.pkg)
		}
		// A function known anywhere but its row would need a second edit.
		if n := len(regexp.MustCompile(`\b`+regexp.QuoteMeta(r.entry)+`\b`).FindAllIndex(script, -1)); n != 1 {
			t.Errorf("entry point %s appears %d times in deploy.sh; only its table row may name it", r.entry, n)
		}
	}

	out, errs, err := deploySh(t, nil, "--dry-run", "--settings", "tests/testdata/deploy.env")
	if err != nil {
		t.Fatalf("deploy.sh --dry-run: %v\n%s", err, errs)
	}
	deployed := map[string]string{}
	var order []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[3] == "functions" && f[4] == "deploy" {
			deployed[f[5]] = line
			order = append(order, f[5])
		}
	}
	var names []string
	for _, r := range rows {
		names = append(names, r.name)
		line := deployed[r.name]
		want := []string{"--source=.deploy/" + r.name, "--entry-point=" + r.entry,
			"--service-account=" + r.account + "-fn@impo-test.iam.gserviceaccount.com", `--set-build-env-vars=GOOGLE_GOLDFLAGS=-s\ -w`,
			"--memory=" + r.memory, "--cpu=" + r.cpu, "--concurrency=" + r.concurrency, "--timeout=" + r.timeout,
			"--min-instances=" + r.min, "--max-instances=" + r.max, "--ingress-settings=" + r.ingress,
			"--env-vars-file=.deploy/" + r.name + ".env.yaml"}
		if r.trigger == "http" {
			want = append(want, "--trigger-http")
		} else {
			want = append(want, "--trigger-topic=", "--retry")
		}
		for _, w := range want {
			if !strings.Contains(line, " "+w) {
				t.Errorf("%s is deployed without %s from its row:\n%s", r.name, w, line)
			}
		}
		if !strings.Contains(out, "# .deploy/"+r.name+" would hold: go.mod, go.sum, a root package importing only ./"+r.pkg+",") {
			t.Errorf("the dry run does not say that %s's upload is %s's own:\n%s", r.name, r.pkg, out)
		}
	}
	if diff := cmp.Diff(names, order); diff != "" {
		t.Errorf("the dry run deploys other functions than the table's rows (-rows +deployed):\n%s", diff)
	}
}

// scriptCopy writes, to a new folder, deploy.sh changed by edits (each
// applied to the whole text), beside the fixture settings and policy; it
// returns the folder.
func scriptCopy(t *testing.T, edits ...func(t *testing.T, script string) string) string {
	t.Helper()
	script := string(mustRead(t, filepath.Join(repoRoot(t), "deploy.sh")))
	for _, edit := range edits {
		script = edit(t, script)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "deploy.sh"), []byte(script), 0o755)
	for _, f := range []string{"tests/testdata/deploy.env", "tests/testdata/gettoken-policy.json"} {
		writeFile(t, filepath.Join(dir, f), mustRead(t, filepath.Join(repoRoot(t), f)), 0o644)
	}
	return dir
}

// withRows adds rows at the end of the table that deploy.sh assigns to
// variable.
func withRows(variable string, rows ...string) func(*testing.T, string) string {
	return func(t *testing.T, script string) string {
		open := "\n" + variable + "='\n"
		i := strings.Index(script, open)
		if i < 0 {
			t.Fatalf("deploy.sh has no %s", variable)
		}
		j := i + len(open) + strings.Index(script[i+len(open):], "\n'\n") + 1
		return script[:j] + strings.Join(rows, "\n") + "\n" + script[j:]
	}
}

// replacing replaces the one occurrence of old in deploy.sh with new.
func replacing(old, new string) func(*testing.T, string) string {
	return func(t *testing.T, script string) string {
		if strings.Count(script, old) != 1 {
			t.Fatalf("deploy.sh holds %q %d times, want once", old, strings.Count(script, old))
		}
		return strings.Replace(script, old, new, 1)
	}
}

// TestDeploy_ANewFunctionIsARowAndItsGrants adds a function to a copy of
// deploy.sh, a row and its grants, and checks that setup and deploy carry
// all of it, that a missing grant stops the script, and that the other
// functions deploy unchanged.
func TestDeploy_ANewFunctionIsARowAndItsGrants(t *testing.T) {
	row := "hello  functions/hello  Hello  topic:HELLO_TOPIC  hello  verify  hello-state  128Mi  .083  1  10s  1  3  internal-only  GREETING=SESSION_TTL HELLO_SECRET=secret:hello-key HELLO_OUT=topic:HELLO_OUT_TOPIC"
	grants := []string{
		"hello  roles/secretmanager.secretAccessor  secret:hello-key        -  reads its key",
		"hello  roles/datastore.user                database:hello-state    -  keeps its state",
		"hello  roles/datastore.viewer              database:sessions       -  reads revocations",
		"hello  roles/pubsub.publisher              topic:HELLO_OUT_TOPIC   -  publishes greetings",
		"hello  roles/eventarc.eventReceiver        project                 -  its trigger delivers as it",
		"hello  roles/run.invoker                   function:hello          -  its trigger invokes as it",
		"pubsub roles/pubsub.subscriber             trigger:hello           -  acknowledges its dead letters",
	}
	dir := scriptCopy(t, withRows("functions_table", row), withRows("grants_table", grants...))
	env := []string{"PROJECT=p", "REGION=r", "HELLO_TOPIC=saludos", "HELLO_OUT_TOPIC=saludos-hechos", "HELLO_MEMORY=1Gi", "HELLO_CPU=.583"}
	out, errs, err := deployShIn(t, dir, env, "--dry-run", "setup", "hello")
	if err != nil {
		t.Fatalf("deploy.sh with the new row: %v\n%s", err, errs)
	}
	sa := "serviceAccount:hello-fn@p.iam.gserviceaccount.com"
	for _, want := range []string{
		`iam service-accounts create hello-fn --display-name=IMPO\ hello\ function`,
		"pubsub topics create saludos\n",
		"pubsub topics create saludos-hechos\n",
		"secrets create hello-key --replication-policy=automatic",
		"firestore databases create --database=hello-state --location=r --type=firestore-native --delete-protection\n",
		"firestore fields ttls update expires --database=hello-state --collection-group=backend-state --enable-ttl --async\n",
		"# hello: reads its key\ngcloud --project=p --quiet secrets add-iam-policy-binding hello-key --member=" + sa + " --role=roles/secretmanager.secretAccessor\n",
		"projects add-iam-policy-binding p --member=" + sa + ` --role=roles/datastore.user --condition=expression=resource.name==\"projects/p/databases/hello-state\"\,title=database\ hello-state` + "\n",
		"projects add-iam-policy-binding p --member=" + sa + ` --role=roles/datastore.viewer --condition=expression=resource.name==\"projects/p/databases/sessions\"\,title=database\ sessions` + "\n",
		"pubsub topics add-iam-policy-binding saludos-hechos --member=" + sa + " --role=roles/pubsub.publisher\n",
		"projects add-iam-policy-binding p --member=" + sa + " --role=roles/eventarc.eventReceiver --condition=None\n",
		"#   FIRESTORE_DATABASE: \"hello-state\"\n#   FIRESTORE_SESSIONS_DATABASE: \"sessions\"\n",
		"#   LOGIN_ISSUER: \"https://login-PROJECT_NUMBER.r.run.app\"\n",
		"#   SESSION_JWKS_URL: \"https://login-PROJECT_NUMBER.r.run.app/jwks\"\n#   GREETING: \"1h\"\n#   HELLO_SECRET: \"hello-key\"\n#   HELLO_OUT: \"saludos-hechos\"\n",
		"# .deploy/hello would hold: go.mod, go.sum, a root package importing only ./functions/hello, and the files of\n",
		"functions deploy hello --gen2 --runtime=go126 --region=r --source=.deploy/hello --entry-point=Hello --trigger-topic=saludos --retry" +
			" --trigger-service-account=hello-fn@p.iam.gserviceaccount.com --service-account=hello-fn@p.iam.gserviceaccount.com" +
			` --set-build-env-vars=GOOGLE_GOLDFLAGS=-s\ -w --memory=1Gi --cpu=.583 --concurrency=1 --timeout=10s --min-instances=1 --max-instances=3` +
			" --ingress-settings=internal-only --env-vars-file=.deploy/hello.env.yaml\n",
		"# hello: its trigger invokes as it\ngcloud --project=p --quiet functions add-invoker-policy-binding hello --region=r --member=" + sa + "\n",
		"# hello: what its trigger fails to deliver 10 times goes to documentos-muertos\n" +
			"gcloud --project=p --quiet functions describe hello --gen2 --region=r --format=value\\(eventTrigger.trigger\\)\n" +
			"gcloud --project=p --quiet eventarc triggers describe TRIGGER --format=value\\(transport.pubsub.subscription\\)\n" +
			"# pubsub: acknowledges its dead letters\n" +
			"gcloud --project=p --quiet pubsub subscriptions add-iam-policy-binding SUBSCRIPTION" +
			" --member=serviceAccount:service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com --role=roles/pubsub.subscriber\n" +
			"gcloud --project=p --quiet pubsub subscriptions update SUBSCRIPTION --dead-letter-topic=documentos-muertos" +
			" --max-delivery-attempts=10 --min-retry-delay=10s --max-retry-delay=600s\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the new row did not give %q; dry run:\n%s", want, out)
		}
	}
	if strings.Contains(out, "session-keys --member="+sa) {
		t.Errorf("a verifier was given the signing keys:\n%s", out)
	}
	if _, errs, err := deployShIn(t, dir, env[:3], "--dry-run", "hello"); err == nil || !strings.Contains(errs, "missing or bad setting: HELLO_OUT_TOPIC") {
		t.Errorf("a topic setting of the new row, unset: %v %q; want a failure naming HELLO_OUT_TOPIC", err, errs)
	}

	// Without any one of its grants, the function could not work: refused.
	for i := range grants {
		fewer := slices.Delete(slices.Clone(grants), i, i+1)
		dir := scriptCopy(t, withRows("functions_table", row), withRows("grants_table", fewer...))
		out, errs, err := deployShIn(t, dir, env, "--dry-run", "hello")
		if err == nil || out != "" || !strings.Contains(errs, "refused: function hello") {
			t.Errorf("without the grant %q: %v, stdout %q, stderr %q; want a refusal naming hello before any command", grants[i], err, out, errs)
		}
	}

	// The other functions deploy as before.
	others := []string{"--dry-run", "--settings", "tests/testdata/deploy.env", "login", "gettoken", "validate", "validate-http"}
	before, errs, err := deploySh(t, nil, others...)
	if err != nil {
		t.Fatalf("deploy.sh: %v\n%s", err, errs)
	}
	after, errs, err := deployShIn(t, dir, env[2:4], others...)
	if err != nil {
		t.Fatalf("deploy.sh with the new row: %v\n%s", err, errs)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("a new row changed how the other functions deploy (-before +after):\n%s", diff)
	}
}

// gcloudStub puts, first on a PATH it returns, a gcloud that only notes
// that it ran, in the file it returns.
func gcloudStub(t *testing.T) (path, ran string) {
	t.Helper()
	bin := t.TempDir()
	ran = filepath.Join(bin, "ran")
	writeFile(t, filepath.Join(bin, "gcloud"), []byte("#!/bin/sh\necho \"$@\" >>"+ran+"\n"), 0o755)
	return bin + string(os.PathListSeparator) + os.Getenv("PATH"), ran
}

// TestDeploy_RefusesDangerousConfigurations: each configuration that would
// let one identity take over another's rights stops the script with a
// message that says why, before any command runs, dry run or not.
func TestDeploy_RefusesDangerousConfigurations(t *testing.T) {
	const vend = `{"roles": {"pipeline": {"service_account": "vend-pipeline@impo-test.iam.gserviceaccount.com", "scopes": ["s"]}}}`
	policy := func(account string) string {
		return `{"roles": {"pipeline": {"service_account": "` + account + `", "scopes": ["s"]}}}`
	}
	tests := []struct {
		name   string
		env    []string
		policy string
		edits  []func(*testing.T, string) string
		want   string
	}{
		{"adc vends gettoken's own identity", []string{"GETTOKEN_SOURCE=adc"}, vend, nil,
			"refused: GETTOKEN_SOURCE=adc is for local runs only"},
		{"selfsigned is local", []string{"GETTOKEN_SOURCE=selfsigned"}, vend, nil,
			"refused: GETTOKEN_SOURCE=selfsigned is for local runs only"},
		{"one impersonated account for all", []string{"GETTOKEN_SOURCE=impersonate:vend@impo-test.iam.gserviceaccount.com"}, vend, nil,
			"refused: GETTOKEN_SOURCE=impersonate:<email> is gone"},
		{"a role without service_account", nil, `{"roles": {"pipeline": {"scopes": ["s"]}}}`, nil,
			`role "pipeline" names no service_account`},
		{"a role with an empty service_account", nil, policy(""), nil, `role "pipeline" names no service_account`},
		{"vends gettoken's runtime account", nil, policy("gettoken-fn@impo-test.iam.gserviceaccount.com"), nil,
			"service_account gettoken-fn@impo-test.iam.gserviceaccount.com is the runtime account of a function (gettoken)"},
		{"vends login's runtime account, in capitals", nil, policy("Login-FN@impo-test.iam.gserviceaccount.com"), nil,
			"is the runtime account of a function (login)"},
		{"vends another deployment's runtime account", nil, policy("validate-fn@impo-staging.iam.gserviceaccount.com"), nil,
			"is the runtime account of a function (validate)"},
		{"vends an overridden runtime account", []string{"VALIDATE_SA=docs-runner@impo-test.iam.gserviceaccount.com"},
			policy("docs-runner@impo-test.iam.gserviceaccount.com"), nil, "is the runtime account of a function (validate)"},
		{"vends Compute Engine's default account", nil, policy("123-compute@developer.gserviceaccount.com"), nil,
			"is not a service account that a project made"},
		{"a policy with a key twice", nil, `{"roles": {"a": {"service_account": "vend-aaaa@impo-test.iam.gserviceaccount.com"}, "a": {}}}`, nil,
			`the key "a" appears twice`},
		{"a policy that is not JSON", nil, `{"roles": {`, nil, "not a JSON policy"},
		{"a key for two accounts", []string{"GETTOKEN_SOURCE=key"},
			`{"roles": {"a": {"service_account": "vend-aaaa@impo-test.iam.gserviceaccount.com"}, "b": {"service_account": "vend-bbbb@impo-test.iam.gserviceaccount.com"}}}`,
			nil, "GETTOKEN_SOURCE=key mints tokens of the key's one account"},
		{"gettoken runs as login", []string{"GETTOKEN_SA=login-fn@impo-test.iam.gserviceaccount.com"}, vend, nil,
			"gettoken and login run as the same account login-fn@impo-test.iam.gserviceaccount.com"},
		{"validate signs sessions", nil, vend,
			[]func(*testing.T, string) string{replacing("topic:DOCS_TOPIC  validate  verify", "topic:DOCS_TOPIC  validate  sign  ")},
			"function validate has sessions=sign: only login may hold the signing keys"},
		{"gettoken reads the signing keys", nil, vend,
			[]func(*testing.T, string) string{replacing("GETTOKEN_POLICY CORS_ALLOWED_ORIGINS", "GETTOKEN_POLICY CORS_ALLOWED_ORIGINS SESSION_KEYS_SECRET=secret:session-keys")},
			"function gettoken reads the secret session-keys: only login may hold the signing keys"},
		{"a grant of the signing keys to validate", nil, vend,
			[]func(*testing.T, string) string{withRows("grants_table", "validate roles/secretmanager.secretAccessor secret:session-keys - verifies")},
			"the grants table gives validate roles/secretmanager.secretAccessor on session-keys"},
		{"gettoken writes login's lock-outs", nil, vend,
			[]func(*testing.T, string) string{withRows("grants_table", "gettoken roles/datastore.user database:login-state - shares")},
			"lets login gettoken write the database login-state"},
		{"validate writes revocations", nil, vend,
			[]func(*testing.T, string) string{withRows("grants_table", "validate roles/datastore.user database:sessions - revokes")},
			"lets login validate write the database sessions"},
		{"a project-wide Firestore grant", nil, vend,
			[]func(*testing.T, string) string{withRows("grants_table", "gettoken roles/datastore.viewer project - reads")},
			"the grants table gives gettoken roles/datastore.viewer on the whole project"},
		{"dead letters back to the trigger's topic", []string{"DEAD_LETTER_TOPIC=documentos"}, vend, nil,
			"DEAD_LETTER_TOPIC and DOCS_TOPIC both name documentos: dead letters need a topic of their own"},
		{"dead letters passing for results", []string{"DEAD_LETTER_TOPIC=documentos-invalidos"}, vend, nil,
			"DEAD_LETTER_TOPIC and INVALID_TOPIC both name documentos-invalidos"},
		{"the Pub/Sub service agent beyond dead letters", nil, vend,
			[]func(*testing.T, string) string{withRows("grants_table", "pubsub roles/editor project - helps")},
			"bad grant row pubsub roles/editor project: the Pub/Sub service agent moves dead letters"},
		{"login serves many at once on a fraction of a vCPU", []string{"LOGIN_CPU=.333"}, vend, nil,
			"function login serves 16 requests at once with cpu .333: Cloud Run needs a whole vCPU"},
		{"more at once than Cloud Run serves", []string{"GETTOKEN_CONCURRENCY=1001"}, vend, nil,
			"function gettoken: concurrency 1001 is not 1 to 1000 requests at once"},
		{"a cpu that is no number", []string{"VALIDATE_HTTP_CPU=one"}, vend, nil,
			"function validate-http: cpu one is not a number of vCPUs"},
		{"the issuer's old setting", []string{"SESSION_ISSUER=impo-copetes-login"}, vend, nil,
			"refused: SESSION_ISSUER is gone: the issuer is now login's URL, LOGIN_ISSUER"},
		{"the issuer set by hand", []string{"LOGIN_ISSUER=https://auth.impo.com.uy"}, vend, nil,
			"refused: LOGIN_ISSUER is not a setting: deploy.sh sets it to LOGIN_URL, or to login's Cloud Run URL"},
		{"nothing moves validate's dead letters", nil, vend,
			[]func(*testing.T, string) string{replacing("pubsub     roles/pubsub.subscriber ", "#pubsub    roles/pubsub.subscriber ")},
			"function validate has its dead letters moved by the Pub/Sub service agent, but the grants table gives pubsub no roles/pubsub.subscriber on trigger:validate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := scriptCopy(t, tt.edits...)
			file := filepath.Join(t.TempDir(), "policy.json")
			writeFile(t, file, []byte(tt.policy), 0o644)
			path, ran := gcloudStub(t)
			env := append([]string{"PROJECT=impo-test", "REGION=r", "GETTOKEN_POLICY_FILE=" + file}, tt.env...)
			for _, args := range [][]string{{"--dry-run", "setup"}, {"setup", "login", "gettoken"}} {
				out, errs, err := deployShIn(t, dir, append(env, "PATH="+path), args...)
				if code := exitCode(err); code != 2 || out != "" || !strings.Contains(errs, tt.want) {
					t.Errorf("deploy.sh %v: exit %d, stdout %q, stderr %q; want exit 2 with %q before any command", args, code, out, errs, tt.want)
				}
				if _, err := os.Stat(ran); err == nil {
					t.Fatalf("deploy.sh %v ran gcloud before refusing: %s", args, mustRead(t, ran))
				}
			}
		})
	}
}

func exitCode(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestDeploy_KeySourceWarnsAndMintsWithItsKey: GETTOKEN_SOURCE=key is
// allowed with a warning that deploy.sh cannot check the key's account;
// gettoken then reads the key and impersonates no one.
func TestDeploy_KeySourceWarnsAndMintsWithItsKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.json")
	writeFile(t, file, []byte(`{"roles": {"a": {"service_account": "vend-key@impo-test.iam.gserviceaccount.com"}, "b": {"service_account": "vend-key@impo-test.iam.gserviceaccount.com"}}}`), 0o644)
	env := []string{"PROJECT=impo-test", "REGION=r", "SECRETS_MODE=mount", "GETTOKEN_SOURCE=key", "GETTOKEN_POLICY_FILE=" + file}
	out, errs, err := deploySh(t, env, "--dry-run", "setup", "gettoken")
	if err != nil {
		t.Fatalf("deploy.sh: %v\n%s", err, errs)
	}
	if !strings.Contains(errs, "WARNING: GETTOKEN_SOURCE=key: the key's service account must not be the runtime account of any function (login-fn@impo-test.iam.gserviceaccount.com gettoken-fn@impo-test.iam.gserviceaccount.com validate-fn@impo-test.iam.gserviceaccount.com ). deploy.sh cannot read the key") {
		t.Errorf("no warning about the key's account; stderr:\n%s", errs)
	}
	for _, want := range []string{
		"secrets create gettoken-key --replication-policy=automatic\n",
		"secrets add-iam-policy-binding gettoken-key --member=serviceAccount:gettoken-fn@impo-test.iam.gserviceaccount.com --role=roles/secretmanager.secretAccessor\n",
		"#   GETTOKEN_SOURCE: \"key\"\n#   GETTOKEN_KEY_SECRET: \"/mnt/gettoken-key/value\"\n",
		"--set-secrets=/mnt/gettoken-key:/value=gettoken-key:latest\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the dry run:\n%s", want, out)
		}
	}
	for _, never := range []string{"serviceAccountTokenCreator", "service-accounts create vend-"} {
		if strings.Contains(out, never) {
			t.Errorf("the key source got %q:\n%s", never, out)
		}
	}
	// And without the key source, no key secret at all.
	out, _, _ = deploySh(t, nil, "--dry-run", "--settings", "tests/testdata/deploy.env", "setup", "gettoken")
	if strings.Contains(out, "gettoken-key") || strings.Contains(out, "GETTOKEN_KEY_SECRET") {
		t.Errorf("impersonate made or read the key secret:\n%s", out)
	}
}

// TestDeploy_StopsWhenTheBuildNeedsAFileKeptOut: a file that a function's
// packages need (here the embedded schema) but that .gcloudignore keeps
// out stops the deploy of that function while it stages, before any
// request, naming the file.
func TestDeploy_StopsWhenTheBuildNeedsAFileKeptOut(t *testing.T) {
	dir, _ := plantedCopy(t)
	ignore := filepath.Join(dir, ".gcloudignore")
	writeFile(t, ignore, []byte(strings.Replace(string(mustRead(t, ignore)), "!/shared/document/schema.json", "", 1)), 0o644)
	env := []string{"CLOUDSDK_CONFIG=" + t.TempDir(), "LOGIN_URL=https://login.example"}
	out, errs, err := deployShIn(t, dir, env, "--settings", "tests/testdata/deploy.env", "validate-http")
	if code := exitCode(err); code != 1 || !strings.Contains(errs, "function validate-http needs shared/document/schema.json, which .gcloudignore keeps out") {
		t.Errorf("exit %d, stderr %q; want exit 1 naming shared/document/schema.json", code, errs)
	}
	if strings.Contains(out, "functions deploy") {
		t.Errorf("deployed anyway:\n%s", out)
	}
}

// TestDeploy_LoginFirstThenItsJWKS: whatever the order asked, login is
// deployed first; every function gets login's URL as LOGIN_ISSUER, and the
// verifiers read login's JWKS there, never the signing keys. The URL is
// LOGIN_URL when set, else login's deterministic Cloud Run URL, made from
// the project's number, which is known before login is deployed.
func TestDeploy_LoginFirstThenItsJWKS(t *testing.T) {
	out, errs, err := deploySh(t, nil, "--dry-run", "--settings", "tests/testdata/deploy.env", "validate-http", "gettoken", "login")
	if err != nil {
		t.Fatalf("deploy.sh: %v\n%s", err, errs)
	}
	number := strings.Index(out, " projects describe impo-test --format=value\\(projectNumber\\)\n")
	login := strings.Index(out, " functions deploy login ")
	gettoken := strings.Index(out, " functions deploy gettoken ")
	validate := strings.Index(out, " functions deploy validate-http ")
	if number < 0 || login < number || gettoken < login || validate < gettoken {
		t.Errorf("want the project's number read, then login, gettoken and validate-http deployed (at %d, %d, %d, %d):\n%s", number, login, gettoken, validate, out)
	}
	if strings.Count(out, " projects describe ") != 1 || strings.Contains(out, "functions describe") {
		t.Errorf("want the project's number read once, and login's URL never asked of the deployed login:\n%s", out)
	}
	const issuer = "https://login-PROJECT_NUMBER.southamerica-east1.run.app"
	if n := strings.Count(out, "LOGIN_ISSUER: \""+issuer+"\"\n"); n != 3 {
		t.Errorf("%d functions have LOGIN_ISSUER %s, want 3:\n%s", n, issuer, out)
	}
	if n := strings.Count(out, "SESSION_JWKS_URL: \""+issuer+"/jwks\""); n != 2 {
		t.Errorf("%d verifiers read login's JWKS, want 2:\n%s", n, out)
	}
	if n := len(regexp.MustCompile(`(?m)^.*session-keys.*$`).FindAllString(out, -1)); n != 2 { // login's env and its deploy
		t.Errorf("session-keys on %d lines, want only login's env and deploy:\n%s", n, out)
	}
	if strings.Contains(out, "SESSION_ISSUER") {
		t.Errorf("a function gets SESSION_ISSUER, with which it refuses to start:\n%s", out)
	}

	// An upgrade, setup with the functions: the new grants before the new
	// code, the old grants removed only after it replaced the old code.
	out, errs, err = deploySh(t, nil, "--dry-run", "--settings", "tests/testdata/deploy.env", "validate", "setup", "login")
	if err != nil {
		t.Fatalf("deploy.sh: %v\n%s", err, errs)
	}
	grants, retire := strings.Index(out, "# IAM: the grants table"), strings.Index(out, "# Grants of earlier versions")
	login, validate = strings.Index(out, " functions deploy login "), strings.Index(out, " functions deploy validate ")
	if grants < 0 || login < grants || validate < login || retire < validate {
		t.Errorf("want grants, login, validate, then old grants removed (at %d, %d, %d, %d):\n%s", grants, login, validate, retire, out)
	}

	// A verifier alone knows login's URL as well.
	out, errs, err = deploySh(t, nil, "--dry-run", "--settings", "tests/testdata/deploy.env", "gettoken")
	if err != nil || !strings.Contains(out, "SESSION_JWKS_URL: \""+issuer+"/jwks\"") || !strings.Contains(out, "LOGIN_ISSUER: \""+issuer+"\"") {
		t.Errorf("gettoken alone: %v\n%s\n%s", err, out, errs)
	}

	// LOGIN_URL, login's own domain, is the issuer as given, less a
	// trailing slash; the project's number is not needed for it.
	out, errs, err = deploySh(t, []string{"LOGIN_URL=https://auth.impo.com.uy/"}, "--dry-run", "--settings", "tests/testdata/deploy.env", "login", "gettoken")
	if err != nil {
		t.Fatalf("deploy.sh: %v\n%s", err, errs)
	}
	if strings.Contains(out, " describe ") || strings.Count(out, "LOGIN_ISSUER: \"https://auth.impo.com.uy\"\n") != 2 ||
		!strings.Contains(out, "SESSION_JWKS_URL: \"https://auth.impo.com.uy/jwks\"") {
		t.Errorf("LOGIN_URL was not used as given:\n%s", out)
	}
	out, errs, err = deploySh(t, []string{"LOGIN_URL=https://api.impo.com.uy/auth"}, "--dry-run", "--settings", "tests/testdata/deploy.env", "gettoken")
	if err != nil || !strings.Contains(out, "SESSION_JWKS_URL: \"https://api.impo.com.uy/auth/jwks\"") {
		t.Errorf("a LOGIN_URL with a path: %v\n%s\n%s", err, out, errs)
	}
}

// TestDeploy_ReadsThePolicyWithGcloudsPython: a fresh Debian with the
// gcloud package has no python3 on its PATH, only the Python that gcloud
// bundles; deploy.sh reads the policy with it, the same way.
func TestDeploy_ReadsThePolicyWithGcloudsPython(t *testing.T) {
	bin := t.TempDir()
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "python") {
				continue
			}
			os.Symlink(filepath.Join(d, e.Name()), filepath.Join(bin, e.Name())) // the first on PATH wins
		}
	}
	if _, err := os.Stat(filepath.Join(bin, "gcloud")); err != nil {
		t.Fatal("gcloud is not on PATH")
	}
	args := []string{"--dry-run", "--settings", "tests/testdata/deploy.env", "setup"}
	want, errs, err := deploySh(t, nil, args...)
	if err != nil {
		t.Fatalf("deploy.sh: %v\n%s", err, errs)
	}
	got, errs, err := deploySh(t, []string{"PATH=" + bin}, args...)
	if err != nil {
		t.Fatalf("deploy.sh without python3: %v\n%s", err, errs)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("without python3 on PATH (-with +without):\n%s", diff)
	}
	file := filepath.Join(t.TempDir(), "policy.json")
	writeFile(t, file, []byte(`{"roles": {"pipeline": {"scopes": ["s"]}}}`), 0o644)
	if _, errs, err := deploySh(t, []string{"PATH=" + bin, "PROJECT=p", "REGION=r", "GETTOKEN_POLICY_FILE=" + file}, "--dry-run", "setup"); err == nil ||
		!strings.Contains(errs, `role "pipeline" names no service_account`) {
		t.Errorf("without python3, a role without service_account: %v %q", err, errs)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestDeploy_TheExamplesPass: the example settings and policy, copied as
// the README says, pass every check of deploy.sh.
func TestDeploy_TheExamplesPass(t *testing.T) {
	dir := t.TempDir()
	root := repoRoot(t)
	writeFile(t, filepath.Join(dir, "deploy.sh"), mustRead(t, filepath.Join(root, "deploy.sh")), 0o755)
	writeFile(t, filepath.Join(dir, "deploy.env"), mustRead(t, filepath.Join(root, "deploy.env.example")), 0o644)
	writeFile(t, filepath.Join(dir, "gettoken-policy.json"), mustRead(t, filepath.Join(root, "gettoken-policy.example.json")), 0o644)
	out, errs, err := deployShIn(t, dir, nil, "--dry-run", "setup", "gettoken")
	if err != nil || errs != "" {
		t.Fatalf("deploy.sh with the examples: %v\n%s", err, errs)
	}
	for _, want := range []string{
		"iam service-accounts create vend-pipeline ",
		"iam service-accounts add-iam-policy-binding vend-lector@impo-copetes-prod.iam.gserviceaccount.com --member=serviceAccount:gettoken-fn@impo-copetes-prod.iam.gserviceaccount.com --role=roles/iam.serviceAccountTokenCreator\n",
		"#   GETTOKEN_SOURCE: \"impersonate\"\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the dry run:\n%s", want, out)
		}
	}
}
