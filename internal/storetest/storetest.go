// Package storetest is the conformance suite every store.Store backend
// must pass.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/internal/testclock"
	"impo.com.uy/copetes/backend/shared/store"
)

// Backend is the backend under test.
type Backend struct {
	// New makes a fresh, empty store for one test that judges expiry by
	// now. The suite moves that clock forward: no test waits in real time.
	New func(t *testing.T, now func() time.Time) store.Store
	// Concurrency is how many goroutines race on one key (default 50).
	Concurrency int
}

// Run runs the suite.
func Run(t *testing.T, b Backend) {
	ctx := context.Background()
	racers := b.Concurrency
	if racers == 0 {
		racers = 50
	}
	// fresh returns an empty store and the clock it reads. The clock
	// starts at the real time: a backend that also expires entries on its
	// own (a Firestore TTL policy) never sees them as long past.
	fresh := func(t *testing.T) (store.Store, *testclock.Clock) {
		c := testclock.New(time.Now())
		return b.New(t, c.Now), c
	}
	add := func(t *testing.T, s store.Store, key string, delta int64, ttl time.Duration) int64 {
		t.Helper()
		v, err := s.Add(ctx, key, delta, ttl)
		if err != nil {
			t.Fatalf("Add(%q, %d): %v", key, delta, err)
		}
		return v
	}
	get := func(t *testing.T, s store.Store, key string) (store.Entry, bool) {
		t.Helper()
		e, ok, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get(%q): %v", key, err)
		}
		return e, ok
	}
	put := func(t *testing.T, s store.Store, key string, e store.Entry) {
		t.Helper()
		if err := s.Put(ctx, key, e); err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
	}
	claim := func(t *testing.T, s store.Store, key string, e store.Entry) bool {
		t.Helper()
		won, err := s.Claim(ctx, key, e)
		if err != nil {
			t.Fatalf("Claim(%q): %v", key, err)
		}
		return won
	}

	t.Run("AddStartsAtZeroAndAccumulates", func(t *testing.T) {
		s, _ := fresh(t)
		for i, want := range []int64{1, 2, 5} {
			delta := int64(1)
			if i == 2 {
				delta = 3
			}
			if got := add(t, s, "c", delta, time.Hour); got != want {
				t.Fatalf("Add #%d = %d; want %d", i+1, got, want)
			}
		}
	})

	t.Run("AddKeepsTheFirstExpiry", func(t *testing.T) {
		s, clock := fresh(t)
		add(t, s, "c", 1, 10*time.Second)
		add(t, s, "c", 1, time.Hour)
		clock.Advance(11 * time.Second)
		if _, ok := get(t, s, "c"); ok {
			t.Fatal("counter present past its first expiry; want absent")
		}
		if got := add(t, s, "c", 1, 10*time.Second); got != 1 {
			t.Fatalf("Add after expiry = %d, want a fresh counter at 1", got)
		}
	})

	t.Run("ExpiresAtItsInstant", func(t *testing.T) {
		s, clock := fresh(t)
		add(t, s, "c", 1, 10*time.Second)
		clock.Advance(10*time.Second - time.Millisecond)
		if _, ok := get(t, s, "c"); !ok {
			t.Fatal("counter absent a millisecond before its expiry")
		}
		clock.Advance(time.Millisecond)
		if _, ok := get(t, s, "c"); ok {
			t.Fatal("counter present at its expiry: Expires is the moment it stops existing")
		}
	})

	t.Run("GetMissing", func(t *testing.T) {
		s, _ := fresh(t)
		if _, ok := get(t, s, "nothing"); ok {
			t.Fatal("Get of a missing key: present")
		}
	})

	t.Run("PutGetDelete", func(t *testing.T) {
		s, clock := fresh(t)
		exp := clock.Now().Add(time.Hour).Truncate(time.Millisecond)
		put(t, s, "k", store.Entry{Value: 7, Expires: exp})
		e, ok := get(t, s, "k")
		if !ok || e.Value != 7 || !e.Expires.Equal(exp) {
			t.Fatalf("Get = %+v, %v; want value 7 expiring %v", e, ok, exp)
		}
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if _, ok := get(t, s, "k"); ok {
			t.Fatal("entry still present after Delete")
		}
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatalf("Delete of a missing key: %v", err)
		}
	})

	t.Run("GetManyAnswersEachKeyInOrder", func(t *testing.T) {
		s, clock := fresh(t)
		exp := clock.Now().Add(time.Hour).Truncate(time.Millisecond)
		put(t, s, "a", store.Entry{Value: 1, Expires: exp})
		put(t, s, "soon", store.Entry{Value: 2, Expires: clock.Now().Add(10 * time.Second)})
		put(t, s, "b/c", store.Entry{Value: 3, Expires: exp})
		clock.Advance(10 * time.Second) // "soon" expires
		keys := []string{"b/c", "missing", "soon", "a", "b/c"}
		entries, found, err := s.GetMany(ctx, keys...)
		if err != nil {
			t.Fatalf("GetMany: %v", err)
		}
		if len(entries) != len(keys) || len(found) != len(keys) {
			t.Fatalf("GetMany of %d keys: %d entries, %d found flags", len(keys), len(entries), len(found))
		}
		want := []struct {
			value int64
			found bool
		}{{3, true}, {0, false}, {0, false}, {1, true}, {3, true}}
		for i, w := range want {
			if found[i] != w.found || (w.found && (entries[i].Value != w.value || !entries[i].Expires.Equal(exp))) {
				t.Errorf("GetMany[%d] (%q) = %+v, %v; want value %d, found %v", i, keys[i], entries[i], found[i], w.value, w.found)
			}
		}
		if entries, found, err := s.GetMany(ctx); err != nil || len(entries) != 0 || len(found) != 0 {
			t.Errorf("GetMany of no keys = %v, %v, %v; want nothing", entries, found, err)
		}
	})

	t.Run("PutExpires", func(t *testing.T) {
		s, clock := fresh(t)
		put(t, s, "k", store.Entry{Value: 1, Expires: clock.Now().Add(10 * time.Second)})
		clock.Advance(11 * time.Second)
		if _, ok := get(t, s, "k"); ok {
			t.Fatal("entry present past its expiry")
		}
	})

	t.Run("ClaimOnceUntilExpiry", func(t *testing.T) {
		s, clock := fresh(t)
		e := store.Entry{Value: 1, Expires: clock.Now().Add(10 * time.Second)}
		if !claim(t, s, "id", e) {
			t.Fatal("first Claim lost; want true")
		}
		if claim(t, s, "id", e) {
			t.Fatal("second Claim won; want false")
		}
		clock.Advance(11 * time.Second)
		if !claim(t, s, "id", store.Entry{Value: 2, Expires: clock.Now().Add(time.Hour)}) {
			t.Fatal("Claim after expiry lost; want true")
		}
	})

	t.Run("KeysAreIndependent", func(t *testing.T) {
		s, _ := fresh(t)
		add(t, s, "a/b", 1, time.Hour)
		add(t, s, "a:b", 5, time.Hour)
		if e, _ := get(t, s, "a/b"); e.Value != 1 {
			t.Fatalf("a/b = %d, want 1: keys collided", e.Value)
		}
	})

	t.Run("ConcurrentAddsAllCount", func(t *testing.T) {
		s, _ := fresh(t)
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
		if e, _ := get(t, s, "c"); e.Value != n {
			t.Fatalf("after %d concurrent Adds the counter is %d", n, e.Value)
		}
	})

	t.Run("ConcurrentClaimsOneWins", func(t *testing.T) {
		s, clock := fresh(t)
		n := racers
		var wins atomic.Int64
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				won, err := s.Claim(ctx, "msg", store.Entry{Value: int64(i), Expires: clock.Now().Add(time.Hour)})
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
		s, _ := fresh(t)
		for i := range 20 {
			add(t, s, fmt.Sprintf("k%d", i), int64(i), time.Hour)
		}
		for i := range 20 {
			if e, ok := get(t, s, fmt.Sprintf("k%d", i)); !ok || e.Value != int64(i) {
				t.Fatalf("k%d = %+v, %v", i, e, ok)
			}
		}
	})
	// Data: the small records some entries carry (authorization codes,
	// refresh token families), read back by every path.
	t.Run("DataRoundTrips", func(t *testing.T) {
		s, clock := fresh(t)
		data := []byte(`{"family":"f1"}`)
		put(t, s, "rec", store.Entry{Value: 1, Expires: clock.Now().Add(time.Hour), Data: data})
		data[2] = 'X' // the caller reuses its buffer: the store kept its own copy
		e, ok := get(t, s, "rec")
		if !ok || string(e.Data) != `{"family":"f1"}` {
			t.Fatalf("Get = %q, %v; want the Data as Put", e.Data, ok)
		}
		e.Data[2] = 'Y' // nor does changing what Get returned change the store
		if e, _ := get(t, s, "rec"); string(e.Data) != `{"family":"f1"}` {
			t.Fatalf("Get after changing an earlier Get's Data = %q; want it unchanged", e.Data)
		}
		put(t, s, "rec", store.Entry{Value: 2, Expires: clock.Now().Add(time.Hour)})
		if e, _ := get(t, s, "rec"); len(e.Data) != 0 || e.Value != 2 {
			t.Fatalf("Get after a Put without Data = %+v; want value 2 and no Data", e)
		}
	})

	t.Run("DataOfTheClaimWinner", func(t *testing.T) {
		s, clock := fresh(t)
		n := racers
		var winner atomic.Int64
		winner.Store(-1)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				won, err := s.Claim(ctx, "used", store.Entry{Value: int64(i), Expires: clock.Now().Add(time.Hour), Data: fmt.Appendf(nil, "racer %d", i)})
				if err != nil {
					t.Error(err)
				}
				if won {
					winner.Store(int64(i))
				}
			})
		}
		wg.Wait()
		w := winner.Load()
		e, ok := get(t, s, "used")
		if w < 0 || !ok || e.Value != w || string(e.Data) != fmt.Sprintf("racer %d", w) {
			t.Fatalf("after %d claims (winner %d) Get = %+v (%q), %v; want the winner's entry and Data", n, w, e, e.Data, ok)
		}
		// A claim over an expired entry takes its place whole: nothing of
		// the old record's Data survives.
		clock.Advance(time.Hour)
		if !claim(t, s, "used", store.Entry{Value: 1, Expires: clock.Now().Add(time.Hour)}) {
			t.Fatal("Claim after expiry lost")
		}
		if e, _ := get(t, s, "used"); len(e.Data) != 0 {
			t.Fatalf("Data after a Claim without Data over an expired entry = %q; want none", e.Data)
		}
	})

	t.Run("DataInGetMany", func(t *testing.T) {
		s, clock := fresh(t)
		exp := clock.Now().Add(time.Hour)
		put(t, s, "a", store.Entry{Value: 1, Expires: exp, Data: []byte("alpha")})
		put(t, s, "plain", store.Entry{Value: 2, Expires: exp})
		put(t, s, "soon", store.Entry{Value: 3, Expires: clock.Now().Add(10 * time.Second), Data: []byte("gone")})
		add(t, s, store.ShardedCounter("n"), 4, time.Hour)
		clock.Advance(10 * time.Second)
		keys := []string{"soon", "a", "missing", store.ShardedCounter("n"), "plain"}
		entries, found, err := s.GetMany(ctx, keys...)
		if err != nil {
			t.Fatal(err)
		}
		want := []struct {
			found bool
			data  string
		}{{false, ""}, {true, "alpha"}, {false, ""}, {true, ""}, {true, ""}}
		for i, w := range want {
			if found[i] != w.found || string(entries[i].Data) != w.data {
				t.Errorf("GetMany[%d] (%q) = %q, %v; want %q, %v", i, keys[i], entries[i].Data, found[i], w.data, w.found)
			}
		}
	})

	t.Run("ExpiryHidesData", func(t *testing.T) {
		s, clock := fresh(t)
		put(t, s, "rec", store.Entry{Value: 1, Expires: clock.Now().Add(10 * time.Second), Data: []byte("secret-ish")})
		clock.Advance(10 * time.Second)
		if e, ok := get(t, s, "rec"); ok || len(e.Data) != 0 {
			t.Fatalf("Get at expiry = %q, %v; want absent, no Data", e.Data, ok)
		}
		entries, found, err := s.GetMany(ctx, "rec")
		if err != nil || found[0] || len(entries[0].Data) != 0 {
			t.Fatalf("GetMany at expiry = %q, %v, %v; want absent, no Data", entries[0].Data, found[0], err)
		}
		// A counter started where the record was has no Data either.
		if got := add(t, s, "rec", 1, time.Hour); got != 1 {
			t.Fatalf("Add over the expired record = %d, want 1", got)
		}
		if e, _ := get(t, s, "rec"); len(e.Data) != 0 {
			t.Fatalf("counter over an expired record has Data %q; want none", e.Data)
		}
	})

	t.Run("AddLeavesDataAlone", func(t *testing.T) {
		s, clock := fresh(t)
		put(t, s, "rec", store.Entry{Value: 1, Expires: clock.Now().Add(time.Hour), Data: []byte("kept")})
		if got := add(t, s, "rec", 1, time.Minute); got != 2 {
			t.Fatalf("Add = %d, want 2", got)
		}
		if e, _ := get(t, s, "rec"); !bytes.Equal(e.Data, []byte("kept")) {
			t.Fatalf("Data after Add = %q; want it untouched", e.Data)
		}
	})

	// Sharded counters (store.ShardedCounter): the same counting contract,
	// whatever entries a backend spreads them over.
	t.Run("CounterSumsConcurrentAdds", func(t *testing.T) {
		s, _ := fresh(t)
		key := store.ShardedCounter("addr")
		n := racers
		seen := make([]int64, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				v, err := s.Add(ctx, key, 1, time.Hour)
				if err != nil {
					t.Error(err)
				}
				seen[i] = v
			})
		}
		wg.Wait()
		if e, ok := get(t, s, key); !ok || e.Value != int64(n) {
			t.Fatalf("after %d concurrent adds the counter is %+v, %v", n, e, ok)
		}
		// What a lock-out relies on: each add sees at least every add
		// stored before it, its own included, so at most k adds see a
		// total of k or less.
		slices.Sort(seen)
		for k, v := range seen {
			if v < int64(k+1) {
				t.Fatalf("the totals the adds returned, sorted, are %v: %d adds saw %d or less", seen, k+1, v)
			}
		}
	})

	t.Run("CounterTakesBackWhatWasAdded", func(t *testing.T) {
		s, _ := fresh(t)
		key := store.ShardedCounter("addr")
		for range 5 {
			add(t, s, key, 1, time.Hour)
		}
		for range 3 {
			add(t, s, key, -1, time.Hour)
		}
		if e, _ := get(t, s, key); e.Value != 2 {
			t.Fatalf("5 adds and 3 take-backs: the counter is %d, want 2", e.Value)
		}
		if got := add(t, s, key, 2, time.Hour); got != 4 {
			t.Fatalf("Add returned the total %d, want 4", got)
		}
	})

	t.Run("CounterCountsNoAddLongerThanItsTTL", func(t *testing.T) {
		s, clock := fresh(t)
		key := store.ShardedCounter("addr")
		add(t, s, key, 1, 10*time.Second)
		clock.Advance(5 * time.Second)
		add(t, s, key, 1, 10*time.Second)
		clock.Advance(11 * time.Second)
		if e, ok := get(t, s, key); ok {
			t.Fatalf("16s after two adds with a 10s ttl the counter is %+v; want absent", e)
		}
		if got := add(t, s, key, 1, 10*time.Second); got != 1 {
			t.Fatalf("Add after expiry = %d, want a fresh counter at 1", got)
		}
	})

	t.Run("CounterDelete", func(t *testing.T) {
		s, _ := fresh(t)
		key := store.ShardedCounter("addr")
		for range 8 {
			add(t, s, key, 1, time.Hour)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		if e, ok := get(t, s, key); ok {
			t.Fatalf("counter after Delete = %+v; want absent", e)
		}
		if got := add(t, s, key, 1, time.Hour); got != 1 {
			t.Fatalf("Add after Delete = %d, want 1", got)
		}
	})

	t.Run("CounterIsApartFromPlainEntries", func(t *testing.T) {
		s, clock := fresh(t)
		key := store.ShardedCounter("k")
		add(t, s, key, 3, time.Hour)
		add(t, s, "k", 5, time.Hour)
		entries, found, err := s.GetMany(ctx, "k", key, store.ShardedCounter("none"))
		if err != nil {
			t.Fatal(err)
		}
		if !found[0] || entries[0].Value != 5 || !found[1] || entries[1].Value != 3 || found[2] {
			t.Fatalf("GetMany(plain, counter, missing counter) = %+v, %v; want 5, 3, absent", entries, found)
		}
		e := store.Entry{Value: 1, Expires: clock.Now().Add(time.Hour)}
		if err := s.Put(ctx, key, e); err == nil || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Put of a sharded counter: %v; want a refusal (not an outage)", err)
		}
		if _, err := s.Claim(ctx, key, e); err == nil || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Claim of a sharded counter: %v; want a refusal (not an outage)", err)
		}
	})
}
