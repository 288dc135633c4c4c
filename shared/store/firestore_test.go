package store_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/internal/emulators"
	"impo.com.uy/copetes/backend/internal/storetest"
	"impo.com.uy/copetes/backend/shared/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	emulators.Stop()
	os.Exit(code)
}

var collections atomic.Int64

// newFirestore connects to the Firestore emulator, in a collection of its
// own so that tests do not see each other's entries.
func newFirestore(t testing.TB) *store.Firestore {
	t.Helper()
	t.Setenv("FIRESTORE_EMULATOR_HOST", emulators.Firestore(t).Host)
	f, err := store.NewFirestore(context.Background(), "impo-test", "(default)", fmt.Sprintf("state-%d", collections.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	// Racing transactions wait on each other's locks, slowly on a loaded
	// machine: these tests are about atomicity, not latency.
	f.Timeout = time.Minute
	return f
}

func TestFirestore_Conformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		New: func(t *testing.T, now func() time.Time) store.Store {
			f := newFirestore(t)
			f.Now = now // expiry is judged on the client: its clock is the one to move
			return f
		},
		// Transactions on one document serialize, and the emulator
		// serializes them slowly: ten racers still prove atomicity.
		Concurrency: 10,
	})
}

func TestFirestore_UnreachableIsUnavailable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := lis.Addr().String()
	lis.Close()
	t.Setenv("FIRESTORE_EMULATOR_HOST", closed)
	f, err := store.NewFirestore(context.Background(), "impo-test", "(default)", "state")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Timeout = 500 * time.Millisecond
	ctx := context.Background()
	exp := store.Entry{Value: 1, Expires: time.Now().Add(time.Hour)}
	checks := map[string]error{}
	_, checks["Add"] = f.Add(ctx, "k", 1, time.Hour)
	_, _, checks["Get"] = f.Get(ctx, "k")
	_, _, checks["GetMany"] = f.GetMany(ctx, "k", "j")
	checks["Put"] = f.Put(ctx, "k", exp)
	_, checks["Claim"] = f.Claim(ctx, "k", exp)
	checks["Delete"] = f.Delete(ctx, "k")
	for op, err := range checks {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with Firestore unreachable: %v, want ErrUnavailable", op, err)
		}
	}

	// Behind a breaker, the operations after the first failures do not
	// wait for their timeout: they fail at once, without asking.
	b := store.NewBreaker(f, 2, time.Hour, nil)
	for range 2 {
		if _, _, err := b.Get(ctx, "k"); !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrOpen) {
			t.Fatalf("Get through a closed breaker: %v; want the store's ErrUnavailable", err)
		}
	}
	if _, _, err := b.Get(ctx, "k"); !errors.Is(err, store.ErrOpen) {
		t.Fatalf("Get after 2 failures in a row: %v; want ErrOpen", err)
	}
}

// BenchmarkFirestore_ConcurrentAdds is many requests adding to one
// counter at once (the logins of an office behind one address), against
// the emulator: a plain counter, one document every add writes, and a
// sharded one. The emulator does not enforce Firestore's write rate per
// document; what it shows is the cost of the writers' contention.
//
//	go test -run '^$' -bench ConcurrentAdds -benchtime 400x ./shared/store/
func BenchmarkFirestore_ConcurrentAdds(b *testing.B) {
	for _, c := range []struct{ name, key string }{
		{"one-document", "fail:203.0.113.7"},
		{"sharded", store.ShardedCounter("fail:203.0.113.7")},
	} {
		b.Run(c.name, func(b *testing.B) {
			f := newFirestore(b)
			f.Timeout = 2 * time.Second // as deployed
			var failed atomic.Int64
			b.SetParallelism(8) // 16 writers on two cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := f.Add(context.Background(), c.key, 1, time.Hour); err != nil {
						failed.Add(1)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "adds/s")
			b.ReportMetric(float64(failed.Load())/float64(b.N), "failed/op")
		})
	}
}
