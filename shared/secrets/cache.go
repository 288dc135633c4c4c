package secrets

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Cache wraps a Source so that a secret costs an upstream read only once
// in a while, and so that an outage of the upstream does not hold the
// requests that need the secret:
//
//   - A value is reused for TTL. Once it has lived three quarters of its
//     TTL, the next caller starts a read in the background and gets the
//     value at once: an instance that is in use renews its values before
//     anyone has to wait for one.
//   - A caller waits for upstream only when there is no value it may
//     have: the cache is cold, or the value has outlived its TTL and no
//     read has failed lately. The wait is bounded (fetchTimeout), and
//     concurrent callers share one read.
//   - Once a read has failed, the last value serves at once, up to Stale
//     past its TTL, while one read per round (retryDelay) runs in the
//     background; each failed round logs one WARNING. Past Stale, the
//     failure reaches the caller.
//
// A value past its TTL is served without asking upstream only while
// upstream is known to be failing, not whenever it is within the stale
// bound: an instance left idle for half an hour would otherwise answer its
// next login with an accounts list half an hour old, and a disabled
// account or a changed password would still work once. Outside an outage,
// no value older than TTL is used. With a TTL of 0 every read goes
// upstream, and the last value only covers a failure.
type Cache struct {
	src   Source
	ttl   time.Duration
	stale time.Duration
	now   func() time.Time

	// retryDelay spaces out the background reads while upstream fails.
	retryDelay time.Duration
	// fetchTimeout bounds one upstream read. A read runs detached from the
	// context of the caller that started it: other callers share its
	// result, and a background read outlives the request that started it.
	fetchTimeout time.Duration

	mu      sync.Mutex
	entries map[string]*entry
}

// entry is what the cache knows of one secret. Its fields are guarded by
// Cache.mu.
type entry struct {
	value   []byte
	has     bool      // value holds a read's result (which may be empty)
	fetched time.Time // when the read that returned value began
	failed  time.Time // when the last read failed; zero after a success
	retryAt time.Time // no background read starts before this
	read    *read     // the upstream read under way, or nil
}

// read is one upstream read; done is closed once value and err are set.
type read struct {
	done  chan struct{}
	value []byte
	err   error
}

// NewCache returns a cache over src.
func NewCache(src Source, ttl, stale time.Duration) *Cache {
	return &Cache{
		src:          src,
		ttl:          ttl,
		stale:        stale,
		now:          time.Now,
		retryDelay:   5 * time.Second,
		fetchTimeout: 10 * time.Second,
		entries:      map[string]*entry{},
	}
}

// SetClock replaces time.Now, for tests.
func (c *Cache) SetClock(now func() time.Time) { c.now = now }

// Secret returns the cached value of name, reading it when needed.
func (c *Cache) Secret(ctx context.Context, name string) ([]byte, error) {
	c.mu.Lock()
	e := c.entries[name]
	if e == nil {
		e = &entry{}
		c.entries[name] = e
	}
	if v, ok := c.usable(ctx, name, e); ok {
		c.mu.Unlock()
		return v, nil
	}
	r := e.read
	if r == nil {
		r = c.start(ctx, name, e, c.now())
	}
	c.mu.Unlock()

	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("secret %q: %w", name, ctx.Err())
	}
	if r.err == nil {
		return r.value, nil
	}
	// The read failed: the last value covers it within the stale bound
	// (the read logged the WARNING), and from now on callers get it at
	// once while the background reads go on.
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.has && c.now().Sub(e.fetched) < c.ttl+c.stale {
		return e.value, nil
	}
	return nil, r.err
}

// Settle returns once the read of name under way, if any, has ended and
// its outcome is recorded: a test calls it to see what a background read
// did, instead of waiting for time to pass.
func (c *Cache) Settle(name string) {
	c.mu.Lock()
	var r *read
	if e := c.entries[name]; e != nil {
		r = e.read
	}
	c.mu.Unlock()
	if r != nil {
		<-r.done
	}
}

// usable returns e's value if a caller may have it without waiting, and
// starts a background read when one is due. c.mu is held.
func (c *Cache) usable(ctx context.Context, name string, e *entry) ([]byte, bool) {
	if !e.has {
		return nil, false
	}
	now := c.now()
	age := now.Sub(e.fetched)
	switch {
	case age < c.ttl-c.ttl/4:
		return e.value, true
	case age < c.ttl:
		// Fresh still; renew it ahead of its expiry.
	case age < c.ttl+c.stale && !e.failed.IsZero() && now.Sub(e.failed) < c.ttl:
		// Stale, but upstream failed within the last TTL: an outage.
	default:
		return nil, false
	}
	if e.read == nil && !now.Before(e.retryAt) {
		c.start(ctx, name, e, now)
	}
	return e.value, true
}

// start begins an upstream read of name. c.mu is held.
//
// A background read may still be running when the response of the
// request that started it has gone out. Cloud Run throttles an instance's
// CPU between requests, so such a read may complete only with the next
// request; nobody waits for it meanwhile, and a read that times out is
// one more failed round.
func (c *Cache) start(ctx context.Context, name string, e *entry, now time.Time) *read {
	r := &read{done: make(chan struct{})}
	e.read = r
	go c.fetch(context.WithoutCancel(ctx), name, e, r, now)
	return r
}

// fetch runs one read and records its outcome before anyone sees it.
func (c *Cache) fetch(ctx context.Context, name string, e *entry, r *read, began time.Time) {
	defer close(r.done)
	fctx, cancel := context.WithTimeout(ctx, c.fetchTimeout)
	r.value, r.err = c.src.Secret(fctx, name)
	cancel()

	c.mu.Lock()
	defer c.mu.Unlock()
	e.read = nil
	if r.err == nil {
		// The age counts from when the read began: the value is at least
		// that new, and no newer for sure.
		e.value, e.has, e.fetched = r.value, true, began
		e.failed, e.retryAt = time.Time{}, time.Time{}
		return
	}
	now := c.now()
	e.failed, e.retryAt = now, now.Add(c.retryDelay)
	if e.has && now.Sub(e.fetched) < c.ttl+c.stale {
		// One line per failed read: one per round, not one per caller.
		slog.WarnContext(ctx, "serving a cached secret: refreshing it failed",
			"secret", name, "age", now.Sub(e.fetched).Round(time.Second).String(),
			"serves_until", e.fetched.Add(c.ttl+c.stale).UTC().Format(time.RFC3339),
			"error", r.err.Error())
	}
}

// Decoded holds a secret's decoded form, decoding again only when the
// secret's bytes change.
type Decoded[T any] struct {
	Source Source
	Name   string
	Decode func([]byte) (T, error)

	mu   sync.Mutex
	raw  []byte
	val  T
	good bool
}

// Get returns the decoded current value of the secret.
func (d *Decoded[T]) Get(ctx context.Context) (T, error) {
	raw, err := d.Source.Secret(ctx, d.Name)
	if err != nil {
		var zero T
		return zero, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.good && bytes.Equal(raw, d.raw) {
		return d.val, nil
	}
	v, err := d.Decode(raw)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("secret %q: %w: %w", d.Name, ErrMalformed, err)
	}
	d.raw, d.val, d.good = raw, v, true
	return v, nil
}
