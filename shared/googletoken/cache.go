package googletoken

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Cache hands out upstream tokens again until Margin before they expire.
// Concurrent misses for one key make one upstream call; a token with less
// than Margin left is never handed out; a failed refresh is an error,
// never the old token.
type Cache struct {
	Source Source
	Margin time.Duration
	Now    func() time.Time
	// Timeout bounds one upstream call, which runs detached from the
	// request that started it because others may wait on it too.
	Timeout time.Duration

	group   singleflight.Group
	mu      sync.Mutex
	entries map[string]Token
}

// NewCache wraps src.
func NewCache(src Source, margin time.Duration, now func() time.Time) *Cache {
	return &Cache{Source: src, Margin: margin, Now: now, Timeout: 15 * time.Second, entries: map[string]Token{}}
}

// Get returns a token for req; hit says whether it came from the cache.
// Requests that mint the same token share it.
func (c *Cache) Get(ctx context.Context, req Request) (tok Token, hit bool, err error) {
	key := cacheKey(req)
	if tok, ok := c.lookup(key); ok {
		return tok, true, nil
	}
	ch := c.group.DoChan(key, func() (any, error) {
		// Another caller may have filled the entry while this one waited
		// for the group.
		if tok, ok := c.lookup(key); ok {
			return tok, nil
		}
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.Timeout)
		defer cancel()
		tok, err := c.Source.Mint(mctx, req)
		if err != nil {
			return Token{}, err
		}
		if left := tok.Expiry.Sub(c.Now()); left <= c.Margin {
			return Token{}, &UpstreamError{Source: c.Source.Name(), Temporary: true,
				Err: fmt.Errorf("upstream gave a token with %s left, under the %s refresh margin", left.Round(time.Second), c.Margin)}
		}
		c.store(key, tok)
		return tok, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return Token{}, false, res.Err
		}
		return res.Val.(Token), false, nil
	case <-ctx.Done():
		return Token{}, false, ctx.Err()
	}
}

// cacheKey says which requests a token serves: the same kind, the same
// account, the same lifetime (0: the source's own) and the same scopes, whatever their order,
// or the same audience. It is derived from the request alone, so it cannot
// disagree with what was minted.
func cacheKey(req Request) string {
	subject := req.Audience
	if req.Kind != ID {
		scopes := slices.Compact(slices.Sorted(slices.Values(req.Scopes)))
		subject = strings.Join(scopes, " ")
	}
	return string(req.Kind) + "|" + req.Account + "|" + req.Lifetime.String() + "|" + subject
}

func (c *Cache) lookup(key string) (Token, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tok, ok := c.entries[key]
	if ok && tok.Expiry.Sub(c.Now()) > c.Margin {
		return tok, true
	}
	return Token{}, false
}

func (c *Cache) store(key string, tok Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.Now()
	// Drop what can no longer be handed out, so that the map holds only
	// live tokens.
	for k, t := range c.entries {
		if t.Expiry.Sub(now) <= c.Margin {
			delete(c.entries, k)
		}
	}
	c.entries[key] = tok
}
