package ratelimit

import (
	"context"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/internal/testclock"
	"impo.com.uy/copetes/backend/shared/store"
)

func TestLimiter(t *testing.T) {
	clk := testclock.New(testclock.Start)
	clock := clk.Now
	l := Limiter{Store: store.NewMemory(clock), Limit: 3, Window: time.Minute, Now: clock}
	ctx := context.Background()
	for i := range 3 {
		if wait, err := l.Allow(ctx, "ana"); wait != 0 || err != nil {
			t.Fatalf("request %d: wait %v, %v", i+1, wait, err)
		}
	}
	clk.Advance(20 * time.Second)
	if wait, _ := l.Allow(ctx, "ana"); wait != 40*time.Second {
		t.Fatalf("4th request: wait %v, want the 40s left in the window", wait)
	}
	if wait, _ := l.Allow(ctx, "bea"); wait != 0 {
		t.Fatal("another caller was limited")
	}
	clk.Advance(41 * time.Second)
	if wait, _ := l.Allow(ctx, "ana"); wait != 0 {
		t.Fatalf("after the window: wait %v", wait)
	}
}
