package secrets

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Cache wraps a Source. A value is reused for TTL; concurrent misses for one
// secret make one upstream call; when a refresh fails, the last value keeps
// serving (with a WARNING log) until it is Stale old past its TTL, and then
// the failure reaches the caller.
type Cache struct {
	src   Source
	ttl   time.Duration
	stale time.Duration
	now   func() time.Time

	// retryDelay spaces out upstream calls while a stale value serves, so
	// that an outage does not add an upstream timeout to every request.
	retryDelay time.Duration
	// fetchTimeout bounds one upstream call, which runs detached from any
	// one caller's context because other callers may share its result.
	fetchTimeout time.Duration

	group   singleflight.Group
	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	value   []byte
	fetched time.Time
	retryAt time.Time
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

// Secret returns the cached value of name, fetching it when needed.
func (c *Cache) Secret(ctx context.Context, name string) ([]byte, error) {
	now := c.now()
	c.mu.Lock()
	e := c.entries[name]
	c.mu.Unlock()
	if e != nil {
		age := now.Sub(e.fetched)
		if age < c.ttl || (now.Before(e.retryAt) && age < c.ttl+c.stale) {
			return e.value, nil
		}
	}
	ch := c.group.DoChan(name, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.fetchTimeout)
		defer cancel()
		return c.src.Secret(fctx, name)
	})
	var res singleflight.Result
	select {
	case res = <-ch:
	case <-ctx.Done():
		return nil, fmt.Errorf("secret %q: %w", name, ctx.Err())
	}
	now = c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if res.Err == nil {
		value := res.Val.([]byte)
		c.entries[name] = &entry{value: value, fetched: now}
		return value, nil
	}
	e = c.entries[name]
	if e == nil || now.Sub(e.fetched) >= c.ttl+c.stale {
		return nil, res.Err
	}
	if !now.Before(e.retryAt) {
		// Log once per retry round, not once per waiting caller.
		slog.WarnContext(ctx, "serving a cached secret: refreshing it failed",
			"secret", name, "age", now.Sub(e.fetched).Round(time.Second).String(),
			"serves_until", e.fetched.Add(c.ttl+c.stale).UTC().Format(time.RFC3339),
			"error", res.Err.Error())
		e.retryAt = now.Add(c.retryDelay)
	}
	return e.value, nil
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
