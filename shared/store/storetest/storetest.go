// Package storetest is the conformance suite every store.Store backend
// must pass.
package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/shared/store"
)

// Backend makes a fresh, empty store for one test. Advance moves the
// store's clock forward: a fake clock's, or time.Sleep for a real one.
type Backend struct {
	New     func(t *testing.T) store.Store
	Now     func() time.Time
	Advance func(d time.Duration)
	// Unit is the shortest expiry the backend resolves reliably; the
	// suite scales its expiries by it (a millisecond for a fake clock).
	Unit time.Duration
	// Concurrency is how many goroutines race on one key (default 50).
	Concurrency int
}

// Run runs the suite.
func Run(t *testing.T, b Backend) {
	ctx := context.Background()
	u := b.Unit
	racers := b.Concurrency
	if racers == 0 {
		racers = 50
	}

	t.Run("AddStartsAtZeroAndAccumulates", func(t *testing.T) {
		s := b.New(t)
		for i, want := range []int64{1, 2, 5} {
			delta := int64(1)
			if i == 2 {
				delta = 3
			}
			got, err := s.Add(ctx, "c", delta, 100*u)
			if err != nil || got != want {
				t.Fatalf("Add #%d = %d, %v; want %d", i+1, got, err, want)
			}
		}
	})

	t.Run("AddKeepsTheFirstExpiry", func(t *testing.T) {
		s := b.New(t)
		s.Add(ctx, "c", 1, 10*u)
		s.Add(ctx, "c", 1, 1000*u)
		b.Advance(11 * u)
		if _, ok, err := s.Get(ctx, "c"); ok || err != nil {
			t.Fatalf("counter past its first expiry: present=%v err=%v; want absent", ok, err)
		}
		if got, _ := s.Add(ctx, "c", 1, 10*u); got != 1 {
			t.Fatalf("Add after expiry = %d, want a fresh counter at 1", got)
		}
	})

	t.Run("GetMissing", func(t *testing.T) {
		s := b.New(t)
		if _, ok, err := s.Get(ctx, "nothing"); ok || err != nil {
			t.Fatalf("Get of a missing key: present=%v err=%v", ok, err)
		}
	})

	t.Run("PutGetDelete", func(t *testing.T) {
		s := b.New(t)
		exp := b.Now().Add(time.Hour).Truncate(time.Millisecond)
		if err := s.Put(ctx, "k", store.Entry{Value: 7, Expires: exp}); err != nil {
			t.Fatal(err)
		}
		e, ok, err := s.Get(ctx, "k")
		if err != nil || !ok || e.Value != 7 || !e.Expires.Equal(exp) {
			t.Fatalf("Get = %+v, %v, %v; want value 7 expiring %v", e, ok, err, exp)
		}
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.Get(ctx, "k"); ok {
			t.Fatal("entry still present after Delete")
		}
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatalf("Delete of a missing key: %v", err)
		}
	})

	t.Run("PutExpires", func(t *testing.T) {
		s := b.New(t)
		s.Put(ctx, "k", store.Entry{Value: 1, Expires: b.Now().Add(10 * u)})
		b.Advance(11 * u)
		if _, ok, _ := s.Get(ctx, "k"); ok {
			t.Fatal("entry present past its expiry")
		}
	})

	t.Run("ClaimOnceUntilExpiry", func(t *testing.T) {
		s := b.New(t)
		e := store.Entry{Value: 1, Expires: b.Now().Add(10 * u)}
		if won, err := s.Claim(ctx, "id", e); !won || err != nil {
			t.Fatalf("first Claim = %v, %v; want true", won, err)
		}
		if won, _ := s.Claim(ctx, "id", e); won {
			t.Fatal("second Claim won; want false")
		}
		b.Advance(11 * u)
		if won, _ := s.Claim(ctx, "id", store.Entry{Value: 2, Expires: b.Now().Add(time.Hour)}); !won {
			t.Fatal("Claim after expiry lost; want true")
		}
	})

	t.Run("KeysAreIndependent", func(t *testing.T) {
		s := b.New(t)
		s.Add(ctx, "a/b", 1, time.Hour)
		s.Add(ctx, "a:b", 5, time.Hour)
		e, _, _ := s.Get(ctx, "a/b")
		if e.Value != 1 {
			t.Fatalf("a/b = %d, want 1: keys collided", e.Value)
		}
	})

	t.Run("ConcurrentAddsAllCount", func(t *testing.T) {
		s := b.New(t)
		n := int64(racers)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if _, err := s.Add(ctx, "c", 1, time.Hour); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if e, _, _ := s.Get(ctx, "c"); e.Value != n {
			t.Fatalf("after %d concurrent Adds the counter is %d", n, e.Value)
		}
	})

	t.Run("ConcurrentClaimsOneWins", func(t *testing.T) {
		s := b.New(t)
		n := racers
		var wins atomic.Int64
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				won, err := s.Claim(ctx, "msg", store.Entry{Value: int64(i), Expires: b.Now().Add(time.Hour)})
				if err != nil {
					t.Error(err)
				}
				if won {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if w := wins.Load(); w != 1 {
			t.Fatalf("%d concurrent claims: %d won, want exactly 1", n, w)
		}
	})

	t.Run("ManyKeys", func(t *testing.T) {
		s := b.New(t)
		for i := range 20 {
			s.Add(ctx, fmt.Sprintf("k%d", i), int64(i), time.Hour)
		}
		for i := range 20 {
			if e, ok, _ := s.Get(ctx, fmt.Sprintf("k%d", i)); !ok || e.Value != int64(i) {
				t.Fatalf("k%d = %+v, %v", i, e, ok)
			}
		}
	})
}
