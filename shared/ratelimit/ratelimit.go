// Package ratelimit counts requests per caller in the shared store over
// fixed windows, so that the limit holds across instances.
package ratelimit

import (
	"context"
	"time"

	"impo.com.uy/copetes/backend/shared/store"
)

// Limiter allows Limit requests per key in each Window.
type Limiter struct {
	Store  store.Store
	Limit  int64
	Window time.Duration
	Now    func() time.Time
}

// Allow counts a request for key. It returns 0 when the request may go
// on, or how long until the window ends and the caller may retry.
func (l Limiter) Allow(ctx context.Context, key string) (time.Duration, error) {
	n, err := l.Store.Add(ctx, "rate:"+key, 1, l.Window)
	if err != nil || n <= l.Limit {
		return 0, err
	}
	e, ok, err := l.Store.Get(ctx, "rate:"+key)
	if err != nil {
		return 0, err
	}
	if !ok {
		return time.Second, nil // the window ended meanwhile
	}
	return max(e.Expires.Sub(l.Now()), time.Second), nil
}
