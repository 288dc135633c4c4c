package accounts

import (
	"regexp"
	"strings"
	"testing"
)

// TestNames_MatchTheRulesTheyReplace: validName and validRole accept
// exactly what the regular expressions they replace accepted.
func TestNames_MatchTheRulesTheyReplace(t *testing.T) {
	nameRE := regexp.MustCompile(`^[a-z0-9][a-z0-9._@+-]{0,127}$`)
	roleRE := regexp.MustCompile(`^[a-z0-9][a-z0-9._:-]{0,63}$`)
	names := []string{
		"", "a", "0", "ana", "ana.perez@impo.com.uy", "a+b", "a-b", "a_b", "a:b", "session-admin",
		".a", "-a", "_a", "@a", "+a", ":a", "A", "aB", "a b", "ñ", "a/b", "a\n", "a\x00",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 65),
		strings.Repeat("a", 127), strings.Repeat("a", 128), strings.Repeat("a", 129),
	}
	for _, n := range names {
		if got, want := validName(n), nameRE.MatchString(n); got != want {
			t.Errorf("validName(%q) = %v, the rule says %v", n, got, want)
		}
		if got, want := validRole(n), roleRE.MatchString(n); got != want {
			t.Errorf("validRole(%q) = %v, the rule says %v", n, got, want)
		}
	}
}

// FuzzNames holds the hand-written checks to the regular expressions on
// any input.
func FuzzNames(f *testing.F) {
	nameRE := regexp.MustCompile(`^[a-z0-9][a-z0-9._@+-]{0,127}$`)
	roleRE := regexp.MustCompile(`^[a-z0-9][a-z0-9._:-]{0,63}$`)
	for _, s := range []string{"ana", "a:b", "-", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validName(s) != nameRE.MatchString(s) || validRole(s) != roleRE.MatchString(s) {
			t.Fatalf("%q: name %v/%v role %v/%v", s, validName(s), nameRE.MatchString(s), validRole(s), roleRE.MatchString(s))
		}
	})
}
