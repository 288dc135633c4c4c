package emulators_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNotDeployed keeps test machinery out of what the buildpack builds:
// the root package (every function) must not depend on anything under
// internal/, which imports testing and starts JVMs.
func TestNotDeployed(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "impo.com.uy/copetes/backend").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for pkg := range strings.Lines(string(out)) {
		if strings.HasPrefix(pkg, "impo.com.uy/copetes/backend/internal/") {
			t.Errorf("the deployed code imports %s", strings.TrimSpace(pkg))
		}
	}
}
