package entrypoint

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"impo.com.uy/copetes/backend/shared/platform"
)

// freshPlatform empties the process's platform for one test.
func freshPlatform(t *testing.T) {
	t.Helper()
	reg.mu.Lock()
	saved := reg.platform
	reg.platform = nil
	reg.mu.Unlock()
	t.Cleanup(func() {
		reg.mu.Lock()
		reg.platform = saved
		reg.mu.Unlock()
	})
}

func TestLazy_FailedBuildIsRetried(t *testing.T) {
	freshPlatform(t)
	t.Setenv("SECRETS_SOURCE", "dir")
	t.Setenv("STATE_STORE", "nonsense")
	var builds atomic.Int64
	l := &lazy[string]{name: "f", build: func(context.Context, *platform.Platform) (string, error) {
		if builds.Add(1) == 1 {
			return "", errors.New("first build fails")
		}
		return "built", nil
	}}
	ctx := context.Background()
	if _, err := l.get(ctx); err == nil {
		t.Fatal("a bad STATE_STORE built a platform")
	}
	if builds.Load() != 0 {
		t.Fatal("the function was built without a platform")
	}
	t.Setenv("STATE_STORE", "memory") // the operator fixes the variable
	if _, err := l.get(ctx); err == nil || builds.Load() != 1 {
		t.Fatalf("second call: %v after %d builds, want the function's own failure", err, builds.Load())
	}
	for range 3 {
		if h, err := l.get(ctx); err != nil || h != "built" {
			t.Fatalf("after a good build: %q, %v", h, err)
		}
	}
	if n := builds.Load(); n != 2 {
		t.Fatalf("%d builds, want 2: a good build is kept", n)
	}
}

func TestLazy_ConcurrentFirstCallsBuildOnce(t *testing.T) {
	freshPlatform(t)
	t.Setenv("SECRETS_SOURCE", "dir")
	t.Setenv("STATE_STORE", "memory")
	var builds atomic.Int64
	var platforms sync.Map
	l := &lazy[http.Handler]{name: "f", build: func(_ context.Context, p *platform.Platform) (http.Handler, error) {
		builds.Add(1)
		platforms.Store(p, true)
		return http.NotFoundHandler(), nil
	}}
	other := &lazy[http.Handler]{name: "g", build: func(_ context.Context, p *platform.Platform) (http.Handler, error) {
		platforms.Store(p, true)
		return http.NotFoundHandler(), nil
	}}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := l.get(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if _, err := other.get(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := builds.Load(); n != 1 {
		t.Fatalf("%d builds for 50 concurrent first calls, want 1", n)
	}
	n := 0
	platforms.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("the functions of one process got %d platforms, want 1 (one memory store for all)", n)
	}
}

func TestLazy_BuildOutlivesTheFirstRequest(t *testing.T) {
	freshPlatform(t)
	t.Setenv("SECRETS_SOURCE", "dir")
	t.Setenv("STATE_STORE", "memory")
	var buildCtx context.Context
	l := &lazy[int]{name: "f", build: func(ctx context.Context, _ *platform.Platform) (int, error) {
		buildCtx = ctx
		return 1, nil
	}}
	req := httptest.NewRequest("GET", "/", nil)
	ctx, cancel := context.WithCancel(req.Context())
	if _, err := l.get(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if buildCtx.Err() != nil {
		t.Fatal("the build's context ended with the first request: clients built with it would break")
	}
}
