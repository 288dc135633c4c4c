package secrets

import (
	"regexp"
	"strings"
	"testing"
)

// TestNames_MatchTheRulesTheyReplace: validID and versionName accept
// exactly what the regular expressions they replace accepted.
func TestNames_MatchTheRulesTheyReplace(t *testing.T) {
	idRE := regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	versionRE := regexp.MustCompile(`^projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255}/versions/[^/]+$`)
	long := strings.Repeat("a", 255)
	names := []string{
		"", "a", "session-keys", "gettoken_key", "A-Z_09", long, long + "a", "a b", "a/b", "ñ", "a.b", "-", "_",
		"accounts\n", "/abs/path",
		"projects/p/secrets/accounts/versions/latest", "projects/p/secrets/accounts/versions/3",
		"projects/p/secrets/" + long + "/versions/1", "projects/p/secrets/" + long + "a/versions/1",
		"projects//secrets/a/versions/1", "projects/p/secrets//versions/1", "projects/p/secrets/a/versions/",
		"projects/p/secrets/a/versions/1/x", "projects/p/secrets/a.b/versions/1", "project/p/secrets/a/versions/1",
		"projects/p q/secrets/a/versions/1 2", "xprojects/p/secrets/a/versions/1",
	}
	for _, n := range names {
		if got, want := validID(n), idRE.MatchString(n); got != want {
			t.Errorf("validID(%q) = %v, the rule says %v", n, got, want)
		}
		if got, want := versionName(n), versionRE.MatchString(n); got != want {
			t.Errorf("versionName(%q) = %v, the rule says %v", n, got, want)
		}
	}
}
