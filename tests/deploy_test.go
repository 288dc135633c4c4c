package tests

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
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
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

func TestDeploy_DryRunMatchesGolden(t *testing.T) {
	for _, target := range []string{"setup", "all", "jwks"} {
		t.Run(target, func(t *testing.T) {
			args := []string{"--dry-run", "--settings", "tests/testdata/deploy.env"}
			var env []string
			switch target {
			case "setup":
				args = append(args, "setup")
			case "jwks": // verifiers read login's JWKS: no signing keys for them
				env = []string{"LOGIN_URL=https://login-impo.a.run.app"}
				args = append(args, "setup", "gettoken", "validate")
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
		case strings.HasSuffix(p, ".go"):
			content = []byte("package decoy\n")
		case binaryDecoys.MatchString(p):
			content = append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 4096)...)
		}
		writeFile(t, filepath.Join(dir, p), content, 0o600)
	}
	return dir, want
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

// fakeCloud records the requests gcloud sends to the Google APIs that a
// deploy touches, and answers enough of each for gcloud to carry on.
type fakeCloud struct {
	t         *testing.T
	mu        sync.Mutex
	functions map[string]map[string]any // created functions, by name
	requests  []recorded
	uploads   [][]byte
	url       string
}

type recorded struct {
	Method, Path string
	Body         map[string]any
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
	op := func(fn map[string]any) map[string]any {
		return map[string]any{"name": "projects/impo-test/locations/r/operations/op", "done": true,
			"metadata": map[string]any{"@type": "type.googleapis.com/google.cloud.functions.v2.OperationMetadata", "stages": []any{}},
			"response": fn}
	}
	p := r.URL.Path
	switch {
	case r.Method == "PUT" && p == "/upload":
		f.uploads = append(f.uploads, raw)
		reply(200, map[string]any{})
	case strings.HasSuffix(p, ":generateUploadUrl"):
		reply(200, map[string]any{"uploadUrl": f.url + "/upload", "storageSource": map[string]any{"bucket": "b", "object": "o"}})
	case strings.HasSuffix(p, "/runtimes"):
		reply(200, map[string]any{"runtimes": []any{map[string]any{"name": "go126", "stage": "GA", "environment": "GEN_2"}}})
	case strings.Contains(p, "IamPolicy"):
		reply(200, map[string]any{"version": 1, "etag": "BwU=", "bindings": []any{}})
	case strings.Contains(p, "/services/") && strings.HasPrefix(p, "/v1/projects/"):
		reply(200, map[string]any{"state": "ENABLED"})
	case strings.HasSuffix(p, "/defaultServiceAccount"):
		reply(200, map[string]any{"serviceAccountEmail": "projects/impo-test/serviceAccounts/1@cloudbuild.gserviceaccount.com"})
	case p == "/v1/projects/impo-test":
		reply(200, map[string]any{"projectId": "impo-test", "projectNumber": "123"})
	case strings.Contains(p, "/operations/"):
		reply(200, op(nil))
	case strings.Contains(p, "/functions"):
		name := p[strings.LastIndex(p, "/")+1:]
		if r.Method == "POST" {
			name = r.URL.Query().Get("functionId")
		}
		switch r.Method {
		case "GET":
			if fn, ok := f.functions[name]; ok {
				reply(200, fn)
			} else {
				reply(404, map[string]any{"error": map[string]any{"code": 404, "status": "NOT_FOUND", "message": "not found"}})
			}
		case "POST", "PATCH":
			fn := body
			fn["state"] = "ACTIVE"
			sc, _ := fn["serviceConfig"].(map[string]any)
			if sc != nil {
				sc["uri"] = "https://" + name + ".example"
				sc["service"] = "projects/impo-test/locations/r/services/" + name
			}
			f.functions[name] = fn
			reply(200, op(fn))
		}
	default:
		f.t.Logf("unanswered: %s %s", r.Method, p)
		reply(404, map[string]any{"error": map[string]any{"code": 404, "status": "NOT_FOUND", "message": "not here"}})
	}
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

// TestDeploy_WithTheRealGcloud runs deploy.sh, and the real gcloud it
// calls, against a local server standing in for the Google APIs, and
// checks the Cloud Functions API requests that gcloud itself built.
func TestDeploy_WithTheRealGcloud(t *testing.T) {
	if _, err := exec.LookPath("gcloud"); err != nil {
		t.Fatal("the Google Cloud CLI (gcloud) is needed")
	}
	fake := &fakeCloud{t: t, functions: map[string]map[string]any{}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	fake.url = srv.URL
	token := filepath.Join(t.TempDir(), "token")
	os.WriteFile(token, []byte("dummy-access-token"), 0o600)
	env := []string{"CLOUDSDK_CONFIG=" + t.TempDir(), "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=" + token, "CLOUDSDK_CORE_DISABLE_PROMPTS=1"}
	for _, api := range []string{"CLOUDFUNCTIONS", "RUN", "SERVICEUSAGE", "CLOUDBUILD", "ARTIFACTREGISTRY", "CLOUDRESOURCEMANAGER", "IAM", "PUBSUB", "EVENTARC"} {
		env = append(env, "CLOUDSDK_API_ENDPOINT_OVERRIDES_"+api+"="+srv.URL+"/")
	}
	// From a copy full of decoys, so that the upload is checked too.
	dir, wantUpload := plantedCopy(t)
	out, errs, err := deployShIn(t, dir, env, "--settings", "tests/testdata/deploy.env")
	if err != nil {
		t.Fatalf("deploy.sh: %v\nstdout:\n%s\nstderr:\n%s", err, out, errs)
	}

	type want struct {
		entry, trigger, sa string
		env                map[string]string
	}
	checks := map[string]want{
		"login": {"Login", "http", "login-fn@impo-test.iam.gserviceaccount.com",
			map[string]string{"ACCOUNTS_SECRET": "/mnt/accounts/value", "CORS_ALLOWED_ORIGINS": "https://portal.impo.com.uy,https://admin.impo.com.uy"}},
		"gettoken": {"GetToken", "http", "gettoken-fn@impo-test.iam.gserviceaccount.com",
			map[string]string{"GETTOKEN_SOURCE": "key", "GETTOKEN_KEY_SECRET": "/mnt/gettoken-key/value"}},
		"validate": {"Validate", "topic", "validate-fn@impo-test.iam.gserviceaccount.com",
			map[string]string{"VALIDATE_VALID_TOPIC": "documentos-validos", "VALIDATE_INVALID_TOPIC": "documentos-invalidos"}},
		"validate-http": {"ValidateHTTP", "http", "validate-fn@impo-test.iam.gserviceaccount.com", nil},
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
				"STATE_STORE": "firestore", "SESSION_KEYS_SECRET": "/mnt/session-keys/value", "TRUSTED_PROXY_HOPS": "1"}
			for k, v := range w.env {
				base[k] = v
			}
			for k, v := range base {
				if envVars[k] != v {
					t.Errorf("env %s = %v, want %q", k, envVars[k], v)
				}
			}
			volumes := fmt.Sprint(svc["secretVolumes"])
			if !strings.Contains(volumes, "session-keys") {
				t.Errorf("secret volumes = %s, want session-keys mounted", volumes)
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
		if !strings.Contains(fmt.Sprint(env["GETTOKEN_POLICY"]), `"pipeline"`) {
			t.Errorf("the policy file did not reach GETTOKEN_POLICY: %v", env["GETTOKEN_POLICY"])
		}
	}

	// What was uploaded, each time: the source, without secrets or tests.
	if len(fake.uploads) != 4 {
		t.Fatalf("%d source uploads, want 4", len(fake.uploads))
	}
	for i, upload := range fake.uploads {
		zr, err := zip.NewReader(bytes.NewReader(upload), int64(len(upload)))
		if err != nil {
			t.Fatal(err)
		}
		var names, files []string
		for _, f := range zr.File {
			names = append(names, f.Name)
			// gcloud keeps an empty entry for an ignored folder; what matters is
			// that no file under it is sent.
			if !f.FileInfo().IsDir() {
				files = append(files, f.Name)
				if keyLike.MatchString(f.Name) {
					t.Errorf("uploaded %s", f.Name)
				}
			}
		}
		if !slices.Contains(names, "backend.go") || !slices.Contains(names, "go.mod") {
			t.Errorf("the upload lacks the root package: %v", names)
		}
		slices.Sort(files)
		if diff := cmp.Diff(wantUpload, files); diff != "" {
			t.Errorf("upload %d is not exactly the source (-want +got):\n%s", i, diff)
		}
	}
}

// functionRow is one row of the function table in deploy.sh.
type functionRow struct {
	name, entry, trigger, account, sessions, memory, timeout, min, max, ingress string
	env                                                                         []string
}

// functionTable parses the table from the text of deploy.sh.
func functionTable(t *testing.T, script string) []functionRow {
	t.Helper()
	const open, end = "\nfunctions_table='\n", "\n'\n"
	i := strings.Index(script, open)
	if i < 0 {
		t.Fatalf("deploy.sh has no %q", strings.TrimSpace(open))
	}
	body := script[i+len(open):]
	body = body[:strings.Index(body, end)]
	var rows []functionRow
	for _, line := range strings.Split(body, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) < 10 {
			t.Fatalf("short table row: %q", line)
		}
		rows = append(rows, functionRow{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10:]})
	}
	if len(rows) == 0 {
		t.Fatal("deploy.sh's function table is empty")
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
	for _, r := range rows {
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
		want := []string{"--entry-point=" + r.entry, "--service-account=" + r.account + "-fn@impo-test.iam.gserviceaccount.com",
			"--memory=" + r.memory, "--timeout=" + r.timeout, "--min-instances=" + r.min, "--max-instances=" + r.max,
			"--ingress-settings=" + r.ingress, "--env-vars-file=.deploy/" + r.name + ".env.yaml"}
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
	}
	if diff := cmp.Diff(names, order); diff != "" {
		t.Errorf("the dry run deploys other functions than the table's rows (-rows +deployed):\n%s", diff)
	}
}

// TestDeploy_ANewFunctionIsOneRow adds a row to a copy of deploy.sh and
// checks that setup and deploy carry all of it, and the rest unchanged.
func TestDeploy_ANewFunctionIsOneRow(t *testing.T) {
	script, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy.sh"))
	if err != nil {
		t.Fatal(err)
	}
	row := "hello  Hello  topic:HELLO_TOPIC  hello  verify  128Mi  10s  1  3  internal-only  GREETING=SESSION_TTL HELLO_SECRET=secret:hello-key HELLO_OUT=topic:HELLO_OUT_TOPIC"
	const open = "\nfunctions_table='\n"
	i := strings.Index(string(script), open)
	if i < 0 {
		t.Fatal("deploy.sh has no function table")
	}
	j := i + len(open) + strings.Index(string(script[i+len(open):]), "\n'\n")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "deploy.sh"), []byte(string(script[:j+1])+row+string(script[j:])), 0o755)

	env := []string{"PROJECT=p", "REGION=r", "HELLO_TOPIC=saludos", "HELLO_OUT_TOPIC=saludos-hechos", "HELLO_MEMORY=1Gi"}
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
		"secrets add-iam-policy-binding hello-key --member=" + sa + " --role=roles/secretmanager.secretAccessor",
		"secrets add-iam-policy-binding session-keys --member=" + sa + " --role=roles/secretmanager.secretAccessor",
		"pubsub topics add-iam-policy-binding saludos-hechos --member=" + sa + " --role=roles/pubsub.publisher",
		"projects add-iam-policy-binding p --member=" + sa + " --role=roles/datastore.user --condition=None",
		"projects add-iam-policy-binding p --member=" + sa + " --role=roles/eventarc.eventReceiver --condition=None",
		"#   GREETING: \"1h\"\n#   HELLO_SECRET: \"hello-key\"\n#   HELLO_OUT: \"saludos-hechos\"\n",
		"functions deploy hello --gen2 --runtime=go126 --region=r --source=.deploy/source --entry-point=Hello --trigger-topic=saludos --retry" +
			" --trigger-service-account=hello-fn@p.iam.gserviceaccount.com --service-account=hello-fn@p.iam.gserviceaccount.com" +
			" --memory=1Gi --timeout=10s --min-instances=1 --max-instances=3 --ingress-settings=internal-only --env-vars-file=.deploy/hello.env.yaml\n",
		"functions add-invoker-policy-binding hello --region=r --member=" + sa + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the new row did not give %q; dry run:\n%s", want, out)
		}
	}
	if _, errs, err := deployShIn(t, dir, env[:3], "--dry-run", "hello"); err == nil || !strings.Contains(errs, "missing or bad setting: HELLO_OUT_TOPIC") {
		t.Errorf("a topic setting of the new row, unset: %v %q; want a failure naming HELLO_OUT_TOPIC", err, errs)
	}

	// The other functions deploy as before.
	others := []string{"--dry-run", "--settings", "tests/testdata/deploy.env", "login", "gettoken", "validate", "validate-http"}
	before, errs, err := deploySh(t, nil, others...)
	if err != nil {
		t.Fatalf("deploy.sh: %v\n%s", err, errs)
	}
	writeFile(t, filepath.Join(dir, "tests/testdata/deploy.env"), mustRead(t, filepath.Join(repoRoot(t), "tests/testdata/deploy.env")), 0o644)
	writeFile(t, filepath.Join(dir, "tests/testdata/gettoken-policy.json"), mustRead(t, filepath.Join(repoRoot(t), "tests/testdata/gettoken-policy.json")), 0o644)
	after, errs, err := deployShIn(t, dir, env[2:4], others...)
	if err != nil {
		t.Fatalf("deploy.sh with the new row: %v\n%s", err, errs)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("a new row changed how the other functions deploy (-before +after):\n%s", diff)
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
