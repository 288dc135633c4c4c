package googletoken

import (
	"context"
	"fmt"
	"slices"
	"strconv"
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
	// Prepare, if set, runs once for each token minted, with the request
	// it was minted for; what it returns rides with the token
	// (Token.Prepared) for as long as the cache hands it out. A caller
	// puts there the work it would otherwise repeat for every request the
	// token serves.
	Prepare func(Request, Token) any

	group   singleflight.Group
	mu      sync.RWMutex // read on every request, written once per token minted
	entries map[string]Token
}

// NewCache wraps src.
func NewCache(src Source, margin time.Duration, now func() time.Time) *Cache {
	return &Cache{Source: src, Margin: margin, Now: now, Timeout: 15 * time.Second, entries: map[string]Token{}}
}

// Get returns a token for req; hit says whether it came from the cache.
// Requests that mint the same token share it.
func (c *Cache) Get(ctx context.Context, req Request) (tok Token, hit bool, err error) {
	var buf [256]byte
	k := appendCacheKey(buf[:0], req)
	if tok, ok := c.lookup(k); ok { // a hit allocates no key
		return tok, true, nil
	}
	key := string(k)
	ch := c.group.DoChan(key, func() (any, error) {
		// Another caller may have filled the entry while this one waited
		// for the group.
		if tok, ok := c.lookup([]byte(key)); ok {
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
		tok.Fingerprint = Fingerprint(tok.Value)
		if c.Prepare != nil {
			tok.Prepared = c.Prepare(req, tok)
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

// appendCacheKey appends to b what says which requests a token serves:
// the same kind, the same account, the same lifetime (0: the source's
// own) and the same scopes, whatever their order, or the same audience.
// It is derived from the request alone, so it cannot disagree with what
// was minted.
func appendCacheKey(b []byte, req Request) []byte {
	b = append(b, req.Kind...)
	b = append(b, '|')
	b = append(b, req.Account...)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(req.Lifetime), 10)
	b = append(b, '|')
	if req.Kind == ID {
		return append(b, req.Audience...)
	}
	scopes := req.Scopes
	if !slices.IsSorted(scopes) {
		scopes = slices.Sorted(slices.Values(scopes))
	}
	for i, s := range scopes {
		switch {
		case i > 0 && s == scopes[i-1]: // once each
			continue
		case i > 0:
			b = append(b, ' ')
		}
		b = append(b, s...)
	}
	return b
}

func (c *Cache) lookup(key []byte) (Token, bool) {
	now := c.Now()
	c.mu.RLock()
	tok, ok := c.entries[string(key)]
	c.mu.RUnlock()
	if ok && tok.Expiry.Sub(now) > c.Margin {
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
