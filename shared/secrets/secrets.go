// Package secrets reads the backend's credentials from Google Secret
// Manager or from a directory of files, through one small interface, with a
// cache that keeps serving through short outages.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Source gives the current value of a named secret. Callers must not modify
// the returned bytes.
type Source interface {
	Secret(ctx context.Context, name string) ([]byte, error)
}

// The three ways reading a secret fails; errors wrap exactly one of them, so
// a caller decides with errors.Is.
var (
	// ErrNotFound: the secret (or the version asked for) does not exist.
	ErrNotFound = errors.New("secret not found")
	// ErrPermissionDenied: the caller may not read it (IAM, file mode).
	ErrPermissionDenied = errors.New("permission denied reading secret")
	// ErrUnavailable: the store could not be reached or failed; a retry
	// may succeed.
	ErrUnavailable = errors.New("secret store unavailable")
	// ErrMalformed: the secret was read but its content is not what it
	// should hold (Decoded's decoder refused it, or it is over MaxSize).
	ErrMalformed = errors.New("secret is malformed")
)

// MaxSize bounds a secret's value. Secret Manager caps payloads at 64 KiB;
// a file source gets the same bound so that both behave alike.
const MaxSize = 64 << 10

// validID reports whether id is a secret id as Secret Manager allows
// them: 1 to 255 letters, digits, - and _. (Not a regular expression:
// compiling ^[A-Za-z0-9_-]{1,255}$ expands the repetition, half a
// millisecond at each process start.)
func validID(id string) bool {
	if len(id) == 0 || len(id) > 255 {
		return false
	}
	for i := range len(id) {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// Dir reads secrets from files: a secret id names a file in Path, and an
// absolute path names itself (how Cloud Functions mounts secrets given with
// --set-secrets, each in a directory of its own).
type Dir struct {
	Path string
}

// Secret reads the file for name.
func (d Dir) Secret(_ context.Context, name string) ([]byte, error) {
	path := name
	if !filepath.IsAbs(name) {
		if !validID(name) {
			return nil, fmt.Errorf("secret %q: %w: a secret id has only letters, digits, - and _", name, ErrNotFound)
		}
		path = filepath.Join(d.Path, name)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", name, classifyFile(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", name, classifyFile(err))
	}
	if len(data) > MaxSize {
		// What Secret Manager would not have taken: no retry reads it,
		// so an operator must (500 "misconfigured", not 503).
		return nil, fmt.Errorf("secret %q: %w: larger than %d bytes, Secret Manager's limit", name, ErrMalformed, MaxSize)
	}
	return data, nil
}

func classifyFile(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w (%v)", ErrPermissionDenied, err)
	}
	return fmt.Errorf("%w (%v)", ErrUnavailable, err)
}

// Write stores data as secret id in the directory, atomically (a reader
// sees the old or the new value, never half) and readable by the owner
// only.
func (d Dir) Write(id string, data []byte) error {
	if !validID(id) {
		return fmt.Errorf("secret id %q: only letters, digits, - and _", id)
	}
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		return err
	}
	return WriteFile(filepath.Join(d.Path, id), data)
}

// WriteFile replaces the file at path with data as Dir.Write does:
// atomically, readable by the owner only. Its folder must exist.
func WriteFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
