package ratelimit

import (
	"context"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/shared/store"
)

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	l := Limiter{Store: store.NewMemory(clock), Limit: 3, Window: time.Minute, Now: clock}
	ctx := context.Background()
	for i := range 3 {
		if wait, err := l.Allow(ctx, "ana"); wait != 0 || err != nil {
			t.Fatalf("request %d: wait %v, %v", i+1, wait, err)
		}
	}
	now = now.Add(20 * time.Second)
	if wait, _ := l.Allow(ctx, "ana"); wait != 40*time.Second {
		t.Fatalf("4th request: wait %v, want the 40s left in the window", wait)
	}
	if wait, _ := l.Allow(ctx, "bea"); wait != 0 {
		t.Fatal("another caller was limited")
	}
	now = now.Add(41 * time.Second)
	if wait, _ := l.Allow(ctx, "ana"); wait != 0 {
		t.Fatalf("after the window: wait %v", wait)
	}
}
