package gettoken

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"impo.com.uy/copetes/backend/shared/googletoken"
	"impo.com.uy/copetes/backend/shared/session"
)

// tokenResponse carries an access token or an ID token, never both, in
// the shape of RFC 6749 §5.1 so that a Go caller wraps it in an
// oauth2.TokenSource.
type tokenResponse struct {
	AccessToken string `json:"access_token,omitempty"`
	IDToken     string `json:"id_token,omitempty"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// issuance is what gettoken prepares once per token it hands out (the
// cache's Prepare), rather than once per request: the audit line's
// attributes, formatted, and the response up to the value of expires_in.
//
// slog formats the attributes given to a handler's WithAttrs once, not
// per line; so the issuance keeps a handler with the attributes that
// describe the token, and, for each caller the token is handed to again
// (up to maxCallers), one that adds who the caller is. A handler is made
// from the default logger of the moment, and made again when that
// changes (a process sets up its logging as it builds its functions; a
// test replaces it to read the log).
type issuance struct {
	attrs []slog.Attr
	body  []byte

	token    atomic.Pointer[tokenLogger]
	callers  sync.Map // jti -> *callerLogger
	ncallers atomic.Int64
}

type tokenLogger struct {
	from *slog.Logger // slog.Default() when made
	with slog.Handler // from's handler, with the attributes
}

type callerLogger struct {
	tokenLogger
	sub   string
	roles []string
}

// maxCallers bounds the callers whose attributes an issuance keeps
// formatted; the lines for others format them every time.
const maxCallers = 256

// prepare makes the issuance of tok, minted for gt.
func (s *server) prepare(gt googletoken.Request, tok googletoken.Token) any {
	what := slog.Any("scopes", gt.Scopes)
	resp := tokenResponse{TokenType: "Bearer", AccessToken: tok.Value}
	if gt.Kind == googletoken.ID {
		what = slog.String("audience", gt.Audience)
		resp = tokenResponse{TokenType: "Bearer", IDToken: tok.Value}
	}
	// The response as encoding/json writes it, cut before the zero
	// expires_in that ends it: response appends the current value.
	body, err := json.Marshal(resp)
	if err != nil || !bytes.HasSuffix(body, []byte(`"expires_in":0}`)) {
		panic(fmt.Sprintf("gettoken: encode a token response: %v", err)) // only a change to tokenResponse gets here
	}
	return &issuance{
		attrs: []slog.Attr{slog.String("kind", string(gt.Kind)), what,
			slog.String("source", s.cache.Source.Name()), slog.String("account", gt.Account), slog.Time("expires", tok.Expiry.UTC()),
			slog.String("fingerprint", tok.Fingerprint)},
		body: body[:len(body)-len("0}")],
	}
}

// response is the JSON response of the issuance, with expiresIn: the
// prepared part, and its end appended to tail.
func (is *issuance) response(tail []byte, expiresIn int64) (body, end []byte) {
	return is.body, append(strconv.AppendInt(tail, expiresIn, 10), "}\n"...)
}

const auditMessage = "token issued"

// audit writes the one log line of an issuance: who, what, until when,
// whether the cache served it, and a fingerprint that ties the line to a
// token a caller reports, never the token itself.
func (is *issuance) audit(ctx context.Context, caller session.Claims, hit bool) {
	def := slog.Default()
	if !def.Enabled(ctx, slog.LevelInfo) {
		return
	}
	// The record goes to the handler itself: slog.Logger would also look
	// up the caller's program counter, for a source the handler does not
	// write.
	r := slog.NewRecord(time.Now(), slog.LevelInfo, auditMessage, 0)
	if hit {
		if h := is.callerHandler(def, caller); h != nil {
			h.Handle(ctx, r)
			return
		}
	}
	cache := "miss"
	if hit {
		cache = "hit"
	}
	r.AddAttrs(slog.String("sub", caller.Subject), slog.Any("roles", caller.Roles), slog.String("cache", cache))
	is.tokenHandler(def).Handle(ctx, r)
}

// tokenHandler returns def's handler with the token's attributes.
func (is *issuance) tokenHandler(def *slog.Logger) slog.Handler {
	if l := is.token.Load(); l != nil && l.from == def {
		return l.with
	}
	l := &tokenLogger{from: def, with: def.Handler().WithAttrs(is.attrs)}
	is.token.Store(l)
	return l.with
}

// callerHandler returns def's handler with the token's attributes, the
// caller's, and cache=hit; nil once maxCallers are kept. The caller's
// token id finds it, and its subject and roles must match: a token id
// names one token, unless someone holding the signing key repeats it.
func (is *issuance) callerHandler(def *slog.Logger, caller session.Claims) slog.Handler {
	if v, ok := is.callers.Load(caller.ID); ok {
		c := v.(*callerLogger)
		if c.from == def && c.sub == caller.Subject && slices.Equal(c.roles, caller.Roles) {
			return c.with
		}
	} else if is.ncallers.Load() >= maxCallers {
		return nil
	}
	c := &callerLogger{tokenLogger: tokenLogger{from: def}, sub: caller.Subject, roles: caller.Roles}
	c.with = is.tokenHandler(def).WithAttrs([]slog.Attr{
		slog.String("sub", caller.Subject), slog.Any("roles", caller.Roles), slog.String("cache", "hit")})
	if _, loaded := is.callers.Swap(caller.ID, c); !loaded {
		is.ncallers.Add(1)
	}
	return c.with
}
