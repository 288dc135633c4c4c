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
// attributes that describe the token, and the response up to the value
// of expires_in.
//
// slog formats the attributes given to a handler's WithAttrs once, not
// per line; so for each caller the token is handed to again (up to
// maxCallers), the issuance keeps a handler with the whole line's
// attributes formatted, in the order the line has always had. A handler
// is made from the default logger of the moment, and made again when
// that changes (a process sets up its logging as it builds its
// functions; a test replaces it to read the log).
type issuance struct {
	token []slog.Attr // kind, scopes or audience, source, account, expires
	print slog.Attr   // fingerprint
	body  []byte

	callers  sync.Map // jti -> *callerHandler
	ncallers atomic.Int64
}

type callerHandler struct {
	from  *slog.Logger // slog.Default() when made
	with  slog.Handler // from's handler, with the attributes
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
		token: []slog.Attr{slog.String("kind", string(gt.Kind)), what,
			slog.String("source", s.cache.Source.Name()), slog.String("account", gt.Account), slog.Time("expires", tok.Expiry.UTC())},
		print: slog.String("fingerprint", tok.Fingerprint),
		body:  body[:len(body)-len("0}")],
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
	r.AddAttrs(is.attrs(caller, cache)...)
	def.Handler().Handle(ctx, r)
}

// attrs are the line's attributes.
func (is *issuance) attrs(caller session.Claims, cache string) []slog.Attr {
	a := make([]slog.Attr, 0, len(is.token)+5)
	a = append(a, slog.String("sub", caller.Subject), slog.Any("roles", caller.Roles))
	a = append(a, is.token...)
	return append(a, slog.String("cache", cache), is.print)
}

// callerHandler returns def's handler with the attributes of a hit for
// caller; nil once maxCallers are kept. The caller's token id finds it,
// and its subject and roles must match: a token id names one token,
// unless someone holding the signing key repeats it.
func (is *issuance) callerHandler(def *slog.Logger, caller session.Claims) slog.Handler {
	if v, ok := is.callers.Load(caller.ID); ok {
		c := v.(*callerHandler)
		if c.from == def && c.sub == caller.Subject && slices.Equal(c.roles, caller.Roles) {
			return c.with
		}
	} else if is.ncallers.Load() >= maxCallers {
		return nil
	}
	c := &callerHandler{from: def, with: def.Handler().WithAttrs(is.attrs(caller, "hit")), sub: caller.Subject, roles: caller.Roles}
	if _, loaded := is.callers.Swap(caller.ID, c); !loaded {
		is.ncallers.Add(1)
	}
	return c.with
}
