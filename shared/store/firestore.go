package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Firestore is a Store in a Firestore (Native mode) collection, shared by
// every instance of every function. Each entry is a document whose id is
// the key (path-escaped) with the fields value and expires; a TTL policy
// on expires lets Firestore delete expired entries itself, and reads
// ignore them until it does.
type Firestore struct {
	client     *firestore.Client
	collection string
	// Timeout bounds each operation: the client retries an unreachable
	// service, and a request should fail clearly instead of waiting.
	Timeout time.Duration
	// Now is the clock that judges expiry, here on the client: the TTL
	// policy deletes late (up to a day), so reads cannot wait for it.
	// Nil means time.Now; tests set a fake clock.
	Now func() time.Time
}

// ExpiresField is the field a Firestore TTL policy must name.
const ExpiresField = "expires"

type doc struct {
	Value   int64     `firestore:"value"`
	Expires time.Time `firestore:"expires"`
}

// NewFirestore connects to database (firestore.DefaultDatabaseID for
// "(default)") in project. FIRESTORE_EMULATOR_HOST is honoured by the
// client.
func NewFirestore(ctx context.Context, project, database, collection string) (*Firestore, error) {
	c, err := firestore.NewClientWithDatabase(ctx, project, database)
	if err != nil {
		return nil, fmt.Errorf("firestore client: %w", err)
	}
	return &Firestore{client: c, collection: collection, Timeout: 5 * time.Second, Now: time.Now}, nil
}

// Close releases the client.
func (f *Firestore) Close() error { return f.client.Close() }

func (f *Firestore) now() time.Time {
	if f.Now == nil {
		return time.Now()
	}
	return f.Now()
}

func (f *Firestore) ref(key string) *firestore.DocumentRef {
	// Document ids may not hold "/"; escaping keeps every key distinct.
	return f.client.Collection(f.collection).Doc(url.PathEscape(key))
}

func (f *Firestore) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, f.Timeout)
}

func unavailable(op, key string, err error) error {
	return fmt.Errorf("%w: %s %q: %v", ErrUnavailable, op, key, err)
}

// read returns the live entry in snap, if any.
func (f *Firestore) read(snap *firestore.DocumentSnapshot, now time.Time) (Entry, bool, error) {
	if !snap.Exists() {
		return Entry{}, false, nil
	}
	var d doc
	if err := snap.DataTo(&d); err != nil {
		return Entry{}, false, err
	}
	if !now.Before(d.Expires) {
		return Entry{}, false, nil
	}
	return Entry(d), true, nil
}

func notFound(err error) bool { return status.Code(err) == codes.NotFound }

// Add implements Store, in a transaction.
func (f *Firestore) Add(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	var value int64
	err := f.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		ref := f.ref(key)
		snap, err := tx.Get(ref)
		if err != nil && !notFound(err) {
			return err
		}
		now := f.now()
		e, ok, err := f.read(snap, now)
		if err != nil {
			return err
		}
		if !ok {
			e = Entry{Expires: now.Add(ttl)}
		}
		e.Value += delta
		value = e.Value
		return tx.Set(ref, doc(e))
	}, firestore.MaxAttempts(20))
	if err != nil {
		return 0, unavailable("add", key, err)
	}
	return value, nil
}

// Get implements Store.
func (f *Firestore) Get(ctx context.Context, key string) (Entry, bool, error) {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	snap, err := f.ref(key).Get(ctx)
	if err != nil && !notFound(err) {
		return Entry{}, false, unavailable("get", key, err)
	}
	e, ok, err := f.read(snap, f.now())
	if err != nil {
		return Entry{}, false, unavailable("get", key, err)
	}
	return e, ok, nil
}

// GetMany implements Store, with one BatchGetDocuments call (GetAll): a
// verifier pays one round trip for a token's two checks, not two.
func (f *Firestore) GetMany(ctx context.Context, keys ...string) ([]Entry, []bool, error) {
	if len(keys) == 0 {
		return nil, nil, nil
	}
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	refs := make([]*firestore.DocumentRef, len(keys))
	for i, k := range keys {
		refs[i] = f.ref(k)
	}
	what := strings.Join(keys, ", ")
	snaps, err := f.client.GetAll(ctx, refs)
	if err != nil {
		return nil, nil, unavailable("get", what, err)
	}
	now := f.now()
	entries, found := make([]Entry, len(keys)), make([]bool, len(keys))
	for i, snap := range snaps {
		if entries[i], found[i], err = f.read(snap, now); err != nil {
			return nil, nil, unavailable("get", keys[i], err)
		}
	}
	return entries, found, nil
}

// Put implements Store.
func (f *Firestore) Put(ctx context.Context, key string, e Entry) error {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	if _, err := f.ref(key).Set(ctx, doc(e)); err != nil {
		return unavailable("put", key, err)
	}
	return nil
}

// errTaken ends a Claim transaction that found a live entry.
var errTaken = errors.New("taken")

// Claim implements Store, in a transaction.
func (f *Firestore) Claim(ctx context.Context, key string, e Entry) (bool, error) {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	err := f.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		ref := f.ref(key)
		snap, err := tx.Get(ref)
		if err != nil && !notFound(err) {
			return err
		}
		if _, live, err := f.read(snap, f.now()); err != nil {
			return err
		} else if live {
			return errTaken
		}
		return tx.Set(ref, doc(e))
	}, firestore.MaxAttempts(20))
	switch {
	case errors.Is(err, errTaken):
		return false, nil
	case err != nil:
		return false, unavailable("claim", key, err)
	}
	return true, nil
}

// Delete implements Store.
func (f *Firestore) Delete(ctx context.Context, key string) error {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	if _, err := f.ref(key).Delete(ctx); err != nil && !notFound(err) {
		return unavailable("delete", key, err)
	}
	return nil
}
