// Package env reads configuration from environment variables, with errors
// that name the variable but never echo a value that might be secret.
package env

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Error is a bad configuration value. It names the variable and says what a
// good value looks like; it never repeats the value itself.
type Error struct {
	Var  string
	Want string
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("environment variable %s: %s", e.Var, e.Want)
}

// String returns the variable's value, or def when it is unset or empty.
func String(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

// List returns the comma-separated items of the variable, trimmed, without
// empty items; nil when it is unset.
func List(name string) []string {
	var out []string
	for item := range strings.SplitSeq(os.Getenv(name), ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Duration parses a Go duration ("90s", "5m") within [min, max].
func Duration(name string, def, min, max time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < min || d > max {
		return 0, &Error{name, fmt.Sprintf("want a duration between %s and %s, such as %q", min, max, def.String())}
	}
	return d, nil
}

// Int parses a whole number within [min, max].
func Int(name string, def, min, max int) (int, error) {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, &Error{name, fmt.Sprintf("want a whole number between %d and %d", min, max)}
	}
	return n, nil
}

// Bool parses true/false (also 1/0, yes/no).
func Bool(name string, def bool) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(name))) {
	case "":
		return def, nil
	case "1", "true", "yes":
		return true, nil
	case "0", "false", "no":
		return false, nil
	}
	return false, &Error{name, "want true or false"}
}

// OneOf returns the value if it is one of the allowed words.
func OneOf(name, def string, allowed ...string) (string, error) {
	v := String(name, def)
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", &Error{name, "want one of " + strings.Join(allowed, ", ")}
}

// Deployed reports whether the process runs as a deployed function: Cloud
// Run, which runs Cloud Functions 2nd gen, sets K_SERVICE. Settings that
// are fine on a developer's machine and dangerous in production (a token
// source that hands out the function's own identity, a verifier holding
// the signing keys) are refused when it is true.
func Deployed() bool { return os.Getenv("K_SERVICE") != "" }
