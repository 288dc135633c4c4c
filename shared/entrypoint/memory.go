package entrypoint

import (
	"context"
	"log/slog"
	"sync"

	"impo.com.uy/copetes/backend/shared/memlimit"
)

// memoryLimit makes setMemoryLimit run once per process. Like the
// registry, it is process state: the Go runtime's memory limit is one
// per process, whatever the functions it serves.
var memoryLimit sync.Once

// setMemoryLimit sets the Go runtime's soft memory limit from the
// instance's (see memlimit.Configure) before the first function is built,
// and says once in the log what it chose.
func setMemoryLimit(ctx context.Context) {
	memoryLimit.Do(func() {
		s, err := memlimit.Configure(memlimit.Host())
		switch {
		case err != nil:
			slog.WarnContext(ctx, "cannot read the instance's memory limit; the Go memory limit is left unset", "error", err.Error())
		case s.FromEnv:
			slog.InfoContext(ctx, "Go memory limit from GOMEMLIMIT", "go_memory_limit_mib", s.GoLimit>>20)
		case s.Instance.Bytes == 0:
			slog.InfoContext(ctx, "no instance memory limit visible; the Go memory limit is left unset")
		default:
			slog.InfoContext(ctx, "Go memory limit set from the instance's", "instance_limit_mib", s.Instance.Bytes>>20,
				"source", s.Instance.Source, "go_memory_limit_mib", s.GoLimit>>20)
		}
	})
}
