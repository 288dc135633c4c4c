package password

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

func TestLimiter_SlotsAreTheLesserOfProcessorsAndMemory(t *testing.T) {
	perHash := int64(Default.Memory) * GCHeadroom // KiB, headroom included
	tests := []struct {
		name        string
		concurrency int
		budgetKiB   int64
		params      Params
		want        int
	}{
		{"processors bound: 2 of them, 256 MiB", 2, 256 << 10, Default, 2},
		{"memory bound: 16 processors, 256 MiB holds 6 hashes with headroom", 16, 256 << 10, Default, 6},
		{"exactly three hashes' memory", 8, 3 * perHash, Default, 3},
		{"a hash twice as large takes twice the memory", 8, 6 * perHash, Params{Memory: 2 * Default.Memory, Time: 2, Threads: 1}, 3},
		{"a hash larger than the budget runs alone, not never", 4, 20 << 10, Default, 1},
		{"zero concurrency means one", 0, 256 << 10, Default, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLimiter(LimiterConfig{Concurrency: tt.concurrency, BudgetKiB: tt.budgetKiB})
			if got := l.Slots(tt.params); got != tt.want {
				t.Fatalf("Slots = %d, want %d", got, tt.want)
			}
			// The semaphore agrees: that many fit, one more does not.
			for i := range tt.want {
				if _, err := l.Acquire(context.Background(), tt.params); err != nil {
					t.Fatalf("hash %d of %d: %v", i+1, tt.want, err)
				}
			}
			if _, err := l.Acquire(context.Background(), tt.params); !errors.Is(err, ErrBusy) {
				t.Fatalf("hash %d with %d slots and no queue: %v, want ErrBusy", tt.want+1, tt.want, err)
			}
		})
	}
}

func TestLimiter_MixedSizesShareTheMemory(t *testing.T) {
	perHash := int64(Default.Memory) * GCHeadroom
	l := NewLimiter(LimiterConfig{Concurrency: 4, BudgetKiB: 4 * perHash})
	big := Params{Memory: 2 * Default.Memory, Time: 2, Threads: 1}
	if _, err := l.Acquire(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the big one holds two hashes' memory: two remain
		if _, err := l.Acquire(context.Background(), Default); err != nil {
			t.Fatalf("default hash %d beside the big one: %v", i+1, err)
		}
	}
	if _, err := l.Acquire(context.Background(), Default); !errors.Is(err, ErrBusy) {
		t.Fatalf("a fourth hash's memory with three hashes' left: %v, want ErrBusy", err)
	}
}

func TestLimiter_BusyWhenNoRoomComesFree(t *testing.T) {
	h := Dummy(Default)
	l := NewLimiter(LimiterConfig{Concurrency: 1, BudgetKiB: 256 << 10, Wait: 20 * time.Millisecond, Queue: 4})
	release, err := l.Acquire(context.Background(), Default) // as a long computation would
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Matches(context.Background(), h, []byte("x")); !errors.Is(err, ErrBusy) {
		t.Fatalf("Matches while the only slot stays taken: %v, want ErrBusy", err)
	}
	release()
	if ok, err := l.Matches(context.Background(), h, []byte("x")); err != nil || ok {
		t.Fatalf("Matches with room = %v, %v; want false, nil", ok, err)
	}
}

func TestLimiter_AFullQueueShedsAtOnce(t *testing.T) {
	h := Dummy(Default)
	l := NewLimiter(LimiterConfig{Concurrency: 1, BudgetKiB: 256 << 10, Wait: time.Hour, Queue: 2})
	if _, err := l.Acquire(context.Background(), Default); err != nil { // the slot is taken
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Two checks wait (the queue); the third is refused without waiting
	// the hour: if it waited, this test would never end.
	for range 2 {
		go l.Matches(ctx, h, []byte("x"))
	}
	for l.waiting.Load() < 2 {
		runtime.Gosched()
	}
	if _, err := l.Matches(context.Background(), h, []byte("x")); !errors.Is(err, ErrBusy) {
		t.Fatalf("a check past the full queue: %v, want ErrBusy at once", err)
	}
}

func TestLimiter_SecretDigestsNeverQueue(t *testing.T) {
	l := NewLimiter(LimiterConfig{Concurrency: 1, BudgetKiB: 256 << 10, Wait: time.Hour, Queue: 0})
	if _, err := l.Acquire(context.Background(), Default); err != nil { // every slot taken, no queue
		t.Fatal(err)
	}
	h, err := Parse(HashSecret([]byte("service-secret")))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := l.Matches(context.Background(), h, []byte("service-secret")); !ok || err != nil {
		t.Fatalf("a service digest with the limiter full: %v, %v; want true, nil: it needs no slot", ok, err)
	}
}

func TestLimiter_SaturatedOnceTheQueueIsFull(t *testing.T) {
	l := NewLimiter(LimiterConfig{Concurrency: 1, BudgetKiB: 256 << 10, Wait: time.Hour, Queue: 2})
	if l.Saturated() {
		t.Fatal("an idle limiter says it is saturated")
	}
	if _, err := l.Acquire(context.Background(), Default); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Acquire(ctx, Default)
	for l.waiting.Load() < 1 {
		runtime.Gosched()
	}
	if l.Saturated() {
		t.Fatal("saturated with room left in the queue")
	}
	go l.Acquire(ctx, Default)
	for l.waiting.Load() < 2 {
		runtime.Gosched()
	}
	if !l.Saturated() {
		t.Fatal("the queue is full, and Saturated says no")
	}
	if NewLimiter(LimiterConfig{Concurrency: 1, BudgetKiB: 256 << 10}).Saturated() {
		t.Fatal("with no queue, Saturated cannot tell, and must say no")
	}
}
