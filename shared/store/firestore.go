package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Firestore is a Store in a Firestore (Native mode) collection, shared by
// every instance of every function. Each entry is a document whose id is
// the key (path-escaped) with the fields value, expires and (when the
// entry has Data) data; a TTL policy on expires lets Firestore delete
// expired entries itself, and reads ignore them until it does.
//
// Writes that depend on what they read (Add, Claim) are compare-and-set,
// not transactions: read the document, then write it on condition that
// it has not changed since (its update time), and read again if it has.
// A transaction locks what it reads until it commits: concurrent
// transactions on one document each hold a lock that the others' commits
// wait for, until the store times them out ("Transaction lock timeout")
// and the client retries them all; one whose client gave up keeps its
// locks until then. With the emulator, 16 concurrent writers of one
// counter got 3 adds a second through, nearly every other add failing
// (docs/benchmarks.md). A conditional write holds nothing between its
// read and its write: of concurrent writers, one wins each round.
type Firestore struct {
	client     atomic.Pointer[firestore.Client]
	dial       func() (*firestore.Client, error)
	collection string
	// Timeout bounds each operation (and the request's own deadline, when
	// sooner, bounds it more): the client retries an unreachable
	// service, and a request should fail clearly instead of waiting.
	Timeout time.Duration
	// Now is the clock that judges expiry, here on the client: the TTL
	// policy deletes late (up to a day), so reads cannot wait for it.
	// Nil means time.Now; tests set a fake clock.
	Now func() time.Time

	mu     sync.Mutex
	closed bool
}

// ExpiresField is the field a Firestore TTL policy must name.
const ExpiresField = "expires"

// doc is an entry as stored. Op names the write that stored it, so that a
// write the client library retried after it had in fact succeeded is
// recognised as this call's own, not counted twice or lost as a claim.
type doc struct {
	Value   int64     `firestore:"value"`
	Expires time.Time `firestore:"expires"`
	Op      string    `firestore:"op,omitempty"`
	Data    []byte    `firestore:"data,omitempty"`
}

// entry is the Entry d stores.
func (d doc) entry() Entry { return Entry{Value: d.Value, Expires: d.Expires, Data: d.Data} }

// casAttempts bounds how many times one write reads again after losing to
// another writer of the same document; the operation's deadline bounds
// the time.
const casAttempts = 20

// NewFirestore connects to database (firestore.DefaultDatabaseID for
// "(default)") in project. FIRESTORE_EMULATOR_HOST is honoured by the
// client. The client keeps ctx (for its credentials, and to connect
// again), so ctx must outlive the store.
func NewFirestore(ctx context.Context, project, database, collection string) (*Firestore, error) {
	f := &Firestore{
		dial:       func() (*firestore.Client, error) { return firestore.NewClientWithDatabase(ctx, project, database) },
		collection: collection, Timeout: 2 * time.Second, Now: time.Now,
	}
	c, err := f.dial()
	if err != nil {
		return nil, fmt.Errorf("firestore client: %w", err)
	}
	f.client.Store(c)
	return f, nil
}

// Close releases the client.
func (f *Firestore) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return f.client.Load().Close()
}

// redial replaces the client with a new one, which connects at once. A
// gRPC connection that failed waits longer and longer between attempts
// to connect again (up to two minutes): after a long outage, the old one
// would still be waiting well after the store is back. The Breaker calls
// it before it lets a probe through. The old client is closed once the
// operations that hold it have timed out.
func (f *Firestore) redial() error {
	c, err := f.dial()
	if err != nil {
		return fmt.Errorf("firestore client: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return c.Close()
	}
	old := f.client.Swap(c)
	time.AfterFunc(f.Timeout, func() { old.Close() })
	return nil
}

func (f *Firestore) now() time.Time {
	if f.Now == nil {
		return time.Now()
	}
	return f.Now()
}

func (f *Firestore) ref(key string) *firestore.DocumentRef {
	// Document ids may not hold "/"; escaping keeps every key distinct.
	return f.client.Load().Collection(f.collection).Doc(url.PathEscape(key))
}

// ctx bounds one operation by Timeout, or by the caller's deadline when
// that comes first (WithTimeout keeps the sooner of the two).
func (f *Firestore) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, f.Timeout)
}

func unavailable(op, key string, err error) error {
	key = strings.TrimPrefix(key, counterMark) // a counter by its name, without the mark
	if errors.Is(err, ErrContended) {
		return fmt.Errorf("%s %q: %w", op, key, err)
	}
	return fmt.Errorf("%w: %s %q: %v", ErrUnavailable, op, key, err)
}

// read returns the document in snap and whether its entry is live.
func (f *Firestore) read(snap *firestore.DocumentSnapshot, now time.Time) (doc, bool, error) {
	if snap == nil || !snap.Exists() {
		return doc{}, false, nil
	}
	var d doc
	if err := snap.DataTo(&d); err != nil {
		return doc{}, false, err
	}
	return d, now.Before(d.Expires), nil
}

func notFound(err error) bool { return status.Code(err) == codes.NotFound }

// newOp names one write (see doc.Op).
func newOp() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// change reads the document at key and, if decide says so, writes the
// entry decide makes of what it read (e, live: the entry and whether it
// is live), on condition that nobody wrote the document in between. It
// returns the entry that stands and whether this call wrote it.
func (f *Firestore) change(ctx context.Context, key string, decide func(e Entry, live bool) (Entry, bool)) (Entry, bool, error) {
	ref := f.ref(key)
	mine := ""
	for attempt := range casAttempts {
		snap, err := ref.Get(ctx)
		if err != nil && !notFound(err) {
			return Entry{}, false, err
		}
		d, live, err := f.read(snap, f.now())
		if err != nil {
			return Entry{}, false, err
		}
		if mine != "" && d.Op == mine {
			// The last attempt's write was stored, then retried by the
			// client library and refused as a conflict with itself.
			return d.entry(), true, nil
		}
		next, write := decide(d.entry(), live)
		if !write {
			return d.entry(), false, nil
		}
		mine = newOp()
		w := doc{Value: next.Value, Expires: next.Expires, Op: mine, Data: next.Data}
		if snap.Exists() {
			// data is written too: a claim over an expired entry must not
			// keep that entry's record (an add carries what it read).
			var data any = firestore.Delete
			if len(w.Data) > 0 {
				data = w.Data
			}
			_, err = ref.Update(ctx, []firestore.Update{
				{Path: "value", Value: w.Value}, {Path: ExpiresField, Value: w.Expires}, {Path: "op", Value: w.Op},
				{Path: "data", Value: data},
			}, firestore.LastUpdateTime(snap.UpdateTime))
		} else {
			_, err = ref.Create(ctx, w)
		}
		switch status.Code(err) {
		case codes.OK:
			return next, true, nil
		case codes.AlreadyExists, codes.FailedPrecondition, codes.NotFound:
			// Another writer came first: read what it wrote, after a
			// short random pause so that the losers do not collide again.
			pause := time.Duration(mathrand.Int64N(int64(5*time.Millisecond) << min(attempt, 4)))
			select {
			case <-ctx.Done():
				return Entry{}, false, ctx.Err()
			case <-time.After(pause):
			}
		default:
			return Entry{}, false, err
		}
	}
	return Entry{}, false, ErrContended
}

// Add implements Store. A sharded counter's add is one shard's add.
func (f *Firestore) Add(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	if base, ok := counterBase(key); ok {
		v, err := f.addToCounter(ctx, base, delta, ttl)
		if err != nil {
			return 0, unavailable("add", base, err)
		}
		return v, nil
	}
	e, _, err := f.add(ctx, key, delta, ttl)
	if err != nil {
		return 0, unavailable("add", key, err)
	}
	return e.Value, nil
}

func (f *Firestore) add(ctx context.Context, key string, delta int64, ttl time.Duration) (Entry, bool, error) {
	return f.change(ctx, key, func(e Entry, live bool) (Entry, bool) {
		if !live {
			e = Entry{Expires: f.now().Add(ttl)}
		}
		e.Value += delta
		return e, true
	})
}

// addToCounter adds delta to one shard of the counter named base and
// returns the counter's total, reading the other shards after the add is
// stored (see ShardedCounter).
func (f *Firestore) addToCounter(ctx context.Context, base string, delta int64, ttl time.Duration) (int64, error) {
	keys := shardKeys(base)
	if delta < 0 {
		// Take it back from a shard that holds as much: where an add was
		// counted, likely in the same window. Nothing waits on the total
		// a take-back returns: the shards as read before it do.
		shards, err := f.getAll(ctx, keys)
		if err != nil {
			return 0, err
		}
		var holding []int
		for i, s := range shards {
			if s.live && s.Value >= -delta {
				holding = append(holding, i)
			}
		}
		shard := mathrand.IntN(CounterShards)
		if len(holding) > 0 {
			shard = holding[mathrand.IntN(len(holding))]
		}
		e, _, err := f.add(ctx, keys[shard], delta, ttl)
		if err != nil {
			return 0, err
		}
		total := e.Value
		for i, s := range shards {
			if i != shard && s.live {
				total += s.Value
			}
		}
		return total, nil
	}
	shard := mathrand.IntN(CounterShards)
	e, _, err := f.add(ctx, keys[shard], delta, ttl)
	if err != nil {
		return 0, err
	}
	// The other shards are read after this add is stored, so that the
	// total counts every add stored before it (see ShardedCounter).
	others := slices.Delete(slices.Clone(keys), shard, shard+1)
	shards, err := f.getAll(ctx, others)
	if err != nil {
		return 0, err
	}
	total := e.Value
	for _, s := range shards {
		if s.live {
			total += s.Value
		}
	}
	return total, nil
}

func shardKeys(base string) []string {
	keys := make([]string, CounterShards)
	for i := range keys {
		keys[i] = shardKey(base, i)
	}
	return keys
}

// stored is a document as read: its entry, whether that entry is live,
// and whether the document exists at all.
type stored struct {
	Entry
	live, exists bool
}

// getAll reads keys (plain keys: no sharded counter) in one round trip.
func (f *Firestore) getAll(ctx context.Context, keys []string) ([]stored, error) {
	refs := make([]*firestore.DocumentRef, len(keys))
	for i, k := range keys {
		refs[i] = f.ref(k)
	}
	snaps, err := f.client.Load().GetAll(ctx, refs)
	if err != nil {
		return nil, err
	}
	now := f.now()
	out := make([]stored, len(keys))
	for i, snap := range snaps {
		d, live, err := f.read(snap, now)
		if err != nil {
			return nil, err
		}
		out[i] = stored{Entry: d.entry(), live: live, exists: snap.Exists()}
	}
	return out, nil
}

// Get implements Store.
func (f *Firestore) Get(ctx context.Context, key string) (Entry, bool, error) {
	entries, found, err := f.GetMany(ctx, key)
	if err != nil {
		return Entry{}, false, err
	}
	return entries[0], found[0], nil
}

// GetMany implements Store, with one BatchGetDocuments call (GetAll): a
// verifier pays one round trip for a token's two checks, not two. A
// sharded counter is the sum of its live shards, present while one is,
// and expires with the last.
func (f *Firestore) GetMany(ctx context.Context, keys ...string) ([]Entry, []bool, error) {
	if len(keys) == 0 {
		return nil, nil, nil
	}
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	var read []string
	spans := make([][2]int, len(keys)) // keys[i] is read[spans[i][0]:spans[i][1]]
	counter := make([]bool, len(keys))
	for i, k := range keys {
		start := len(read)
		if base, ok := counterBase(k); ok {
			read = append(read, shardKeys(base)...)
			counter[i] = true
		} else {
			read = append(read, k)
		}
		spans[i] = [2]int{start, len(read)}
	}
	docs, err := f.getAll(ctx, read)
	if err != nil {
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = strings.TrimPrefix(k, counterMark)
		}
		return nil, nil, unavailable("get", strings.Join(names, ", "), err)
	}
	entries, found := make([]Entry, len(keys)), make([]bool, len(keys))
	for i, span := range spans {
		if !counter[i] {
			if d := docs[span[0]]; d.live {
				entries[i], found[i] = d.Entry, true
			}
			continue
		}
		for _, d := range docs[span[0]:span[1]] {
			if !d.live {
				continue
			}
			entries[i].Value += d.Value
			if d.Expires.After(entries[i].Expires) {
				entries[i].Expires = d.Expires
			}
			found[i] = true
		}
	}
	return entries, found, nil
}

// Put implements Store.
func (f *Firestore) Put(ctx context.Context, key string, e Entry) error {
	if err := notACounter("put", key); err != nil {
		return err
	}
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	if _, err := f.ref(key).Set(ctx, doc{Value: e.Value, Expires: e.Expires, Data: e.Data}); err != nil {
		return unavailable("put", key, err)
	}
	return nil
}

// Claim implements Store.
func (f *Firestore) Claim(ctx context.Context, key string, e Entry) (bool, error) {
	if err := notACounter("claim", key); err != nil {
		return false, err
	}
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	_, won, err := f.change(ctx, key, func(_ Entry, live bool) (Entry, bool) { return e, !live })
	if err != nil {
		return false, unavailable("claim", key, err)
	}
	return won, nil
}

// Delete implements Store. A sharded counter's shards that exist are
// deleted at once, each on its own.
func (f *Firestore) Delete(ctx context.Context, key string) error {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	base, ok := counterBase(key)
	if !ok {
		if _, err := f.ref(key).Delete(ctx); err != nil && !notFound(err) {
			return unavailable("delete", key, err)
		}
		return nil
	}
	keys := shardKeys(base)
	shards, err := f.getAll(ctx, keys)
	if err != nil {
		return unavailable("delete", base, err)
	}
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, s := range shards {
		if s.exists {
			wg.Go(func() {
				if _, err := f.ref(keys[i]).Delete(ctx); err != nil && !notFound(err) {
					errs[i] = err
				}
			})
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return unavailable("delete", base, err)
	}
	return nil
}
