// Package gettoken vends short-lived Google Cloud tokens: an authenticated
// caller whose roles allow it under the policy gets an access token or an
// ID token, so that no caller ever holds a service-account key. Entry
// point: GetToken.
package gettoken

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/compute/metadata"

	"impo.com.uy/copetes/backend/shared/bearer"
	"impo.com.uy/copetes/backend/shared/entrypoint"
	"impo.com.uy/copetes/backend/shared/googletoken"
	"impo.com.uy/copetes/backend/shared/httpapi"
	"impo.com.uy/copetes/backend/shared/platform"
	"impo.com.uy/copetes/backend/shared/ratelimit"
	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/session"
	"impo.com.uy/copetes/backend/shared/strictjson"
	"impo.com.uy/copetes/backend/shared/tokenpolicy"
	"impo.com.uy/copetes/backend/shared/vending"
)

func init() {
	entrypoint.HTTP("GetToken", build)
}

// build makes the GetToken handler from the environment and the process's
// platform.
func build(ctx context.Context, p *platform.Platform) (http.Handler, error) {
	cfg, err := configFromEnv()
	if err != nil {
		return nil, err
	}
	if cfg.Deployed {
		// The account gettoken runs as, so that no policy can hand it out.
		if cfg.RuntimeAccount, err = metadata.EmailWithContext(ctx, "default"); err != nil {
			return nil, fmt.Errorf("the runtime service account (metadata server): %w", err)
		}
	}
	if cfg.Policy != nil {
		if err := cfg.checkPolicy(cfg.Policy); err != nil {
			return nil, err
		}
	}
	auth, err := session.VerifierFromEnv(p.Secrets, p.Sessions, p.SharedStore)
	if err != nil {
		return nil, err
	}
	tokens, err := newSource(cfg, p.Secrets, time.Now)
	if err != nil {
		return nil, err
	}
	return newServer(cfg, p, auth, tokens, time.Now).routes(), nil
}

type server struct {
	cfg     config
	auth    *session.Authority
	policy  func(context.Context) (*tokenpolicy.Policy, error)
	planner vending.Planner
	cache   *googletoken.Cache
	limits  ratelimit.Limiter
	now     func() time.Time
}

func newServer(cfg config, p *platform.Platform, auth *session.Authority, src googletoken.Source, now func() time.Time) *server {
	s := &server{
		cfg:     cfg,
		auth:    auth,
		policy:  cfg.policySource(p.Secrets),
		planner: vending.Planner{Source: src, Margin: cfg.Margin},
		cache:   googletoken.NewCache(src, cfg.Margin, now),
		limits:  ratelimit.Limiter{Store: p.Store, Limit: cfg.RateLimit, Window: cfg.RateWindow, Now: now},
		now:     now,
	}
	s.cache.Prepare = s.prepare
	return s
}

// routes is the function's handler: CORS for the staff's browsers around
// the token endpoint.
func (s *server) routes() http.Handler {
	return httpapi.CORS{
		Origins:     s.cfg.CORSOrigins,
		Credentials: s.auth.Config.Cookie != "",
		Methods:     []string{http.MethodPost},
	}.Wrap(httpapi.Handler(s.getToken))
}

const (
	maxBody   = 8 << 10
	maxScopes = 20
)

// request is the JSON body; the form has the same fields, with scope
// space-separated (RFC 6749 §3.3).
type request struct {
	Scopes   []string `json:"scopes"`
	Audience string   `json:"audience"`
	Lifetime int64    `json:"lifetime"` // seconds; 0 for the default
}

func (s *server) getToken(w http.ResponseWriter, r *http.Request) error {
	if err := httpapi.CheckMethod(w, r, http.MethodPost); err != nil {
		return err
	}
	caller, err := bearer.Authenticate(r, s.auth.Verifier, bearer.Cookie{Name: s.auth.Config.Cookie, Origins: s.cfg.CORSOrigins})
	if err != nil {
		return err
	}
	wait, err := s.limits.Allow(r.Context(), "gettoken:"+caller.Subject)
	if err != nil {
		return &httpapi.Error{Status: http.StatusServiceUnavailable, Detail: "cannot check the rate limit right now", Err: err, RetryAfter: 5 * time.Second}
	}
	if wait > 0 {
		return &httpapi.Error{Status: http.StatusTooManyRequests, RetryAfter: wait,
			Detail: fmt.Sprintf("more than %d token requests in %s", s.cfg.RateLimit, s.cfg.RateWindow)}
	}
	req, err := decode(w, r)
	if err != nil {
		return err
	}
	gt, err := s.plan(r.Context(), caller, req)
	if err != nil {
		return err
	}
	tok, hit, err := s.cache.Get(r.Context(), gt)
	if err != nil {
		return s.mintError(err)
	}

	is, ok := tok.Prepared.(*issuance)
	if !ok { // the cache prepares every token it mints; this is a guard
		is = s.prepare(gt, tok).(*issuance)
	}
	is.audit(r.Context(), caller, hit)

	httpapi.SetCanonical(w.Header(), "Cache-Control", "no-store")
	httpapi.SetCanonical(w.Header(), "Pragma", "no-cache")
	var tail [24]byte
	body, end := is.response(tail[:0], int64(tok.Expiry.Sub(s.now())/time.Second))
	httpapi.WriteJSONText(w, body, end)
	return nil
}

// decode reads a JSON or form request strictly.
func decode(w http.ResponseWriter, r *http.Request) (request, error) {
	var req request
	switch httpapi.MediaType(r) {
	case "application/json":
		// One pass over the body, field by field: encoding/json would
		// read it twice (strictjson.Check, then by reflection). As
		// there, null leaves a field unset; unlike there, names match
		// exactly, as the documentation spells them.
		err := httpapi.DecodeObject(w, r, maxBody, func(key []byte, v strictjson.Value) error {
			ok := true
			switch string(key) {
			case "scopes":
				if !v.IsNull() {
					if req.Scopes, ok = v.Strings(); !ok {
						return v.WrongType("array of strings")
					}
				}
			case "audience":
				if !v.IsNull() {
					if req.Audience, ok = v.String(); !ok {
						return v.WrongType("string")
					}
				}
			case "lifetime":
				if !v.IsNull() {
					if req.Lifetime, ok = v.Int64(); !ok {
						return v.WrongType("integer")
					}
				}
			default:
				return v.UnknownField()
			}
			return nil
		})
		if err != nil {
			return req, err
		}
	case "application/x-www-form-urlencoded":
		form, err := httpapi.ParseForm(w, r, maxBody)
		if err != nil {
			return req, err
		}
		for k := range form {
			if k != "scope" && k != "audience" && k != "lifetime" {
				return req, httpapi.Errorf(http.StatusBadRequest, "unknown form parameter %q: use scope, audience and lifetime", k)
			}
		}
		req.Scopes = strings.Fields(form.Get("scope"))
		req.Audience = form.Get("audience")
		if l := form.Get("lifetime"); l != "" {
			if req.Lifetime, err = strconv.ParseInt(l, 10, 64); err != nil {
				return req, httpapi.Errorf(http.StatusBadRequest, "lifetime must be a whole number of seconds")
			}
		}
	default:
		return req, httpapi.UnsupportedMediaType(r, "application/json", "application/x-www-form-urlencoded")
	}
	switch {
	case len(req.Scopes) > 0 && req.Audience != "":
		return req, httpapi.Errorf(http.StatusBadRequest, "ask for scopes (an access token) or an audience (an ID token), not both")
	case len(req.Scopes) == 0 && req.Audience == "":
		return req, httpapi.Errorf(http.StatusBadRequest, "ask for scopes (an access token) or an audience (an ID token)")
	case len(req.Scopes) > maxScopes:
		return req, httpapi.Errorf(http.StatusBadRequest, "at most %d scopes", maxScopes)
	case req.Lifetime < 0 || req.Lifetime > 12*3600:
		return req, httpapi.Errorf(http.StatusBadRequest, "lifetime must be between 1 and 43200 seconds")
	}
	for _, sc := range req.Scopes {
		if sc == "" || strings.ContainsAny(sc, " \t\r\n") {
			return req, httpapi.Errorf(http.StatusBadRequest, "a scope is empty or has spaces")
		}
	}
	return req, nil
}

// plan asks the policy what caller may have, and maps a refusal to the
// client's answer.
func (s *server) plan(ctx context.Context, caller session.Claims, req request) (googletoken.Request, error) {
	policy, err := s.policy(ctx)
	if err != nil {
		return googletoken.Request{}, policyError(err)
	}
	gt, err := s.planner.Plan(policy, caller.Roles, vending.Ask{
		Scopes: req.Scopes, Audience: req.Audience, Lifetime: time.Duration(req.Lifetime) * time.Second})
	var unservable *vending.UnservableError
	switch {
	case errors.Is(err, vending.ErrDenied):
		return gt, &httpapi.Error{Status: http.StatusForbidden, Detail: err.Error()}
	case errors.As(err, &unservable):
		return gt, &httpapi.Error{Status: http.StatusBadRequest, Detail: err.Error()}
	}
	return gt, err
}

// mintError maps a failure to mint to what the caller can act on.
func (s *server) mintError(err error) error {
	var ue *googletoken.UpstreamError
	switch {
	case errors.Is(err, googletoken.ErrIdentity):
		return &httpapi.Error{Status: http.StatusInternalServerError, Detail: "gettoken is misconfigured; see the server log", Err: err}
	case errors.Is(err, googletoken.ErrUnsupported):
		return &httpapi.Error{Status: http.StatusBadRequest, Detail: err.Error()}
	case errors.As(err, &ue) && ue.Temporary:
		return &httpapi.Error{Status: http.StatusServiceUnavailable, RetryAfter: 5 * time.Second,
			Detail: "the token source " + ue.Source + " is unavailable; retry shortly", Err: err}
	case errors.As(err, &ue):
		return &httpapi.Error{Status: http.StatusBadGateway, RetryAfter: 30 * time.Second,
			Detail: fmt.Sprintf("the token source %s refused to mint (status %d); an operator must check its permissions", ue.Source, ue.Status), Err: err}
	case errors.Is(err, secrets.ErrUnavailable):
		return &httpapi.Error{Status: http.StatusServiceUnavailable, RetryAfter: 5 * time.Second, Detail: "cannot read the service-account key right now", Err: err}
	case misconfigured(err):
		return &httpapi.Error{Status: http.StatusInternalServerError, Detail: "gettoken is misconfigured; see the server log", Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &httpapi.Error{Status: http.StatusServiceUnavailable, RetryAfter: 5 * time.Second, Detail: "minting the token took too long", Err: err}
	}
	return err
}

// policyError maps a failure to read the policy.
func policyError(err error) error {
	if misconfigured(err) {
		return &httpapi.Error{Status: http.StatusInternalServerError, Detail: "gettoken is misconfigured; see the server log", Err: err}
	}
	return &httpapi.Error{Status: http.StatusServiceUnavailable, RetryAfter: 5 * time.Second, Detail: "cannot read the gettoken policy right now", Err: err}
}

// misconfigured says err is one only an operator can fix: a secret that is
// missing, unreadable or malformed.
func misconfigured(err error) bool {
	return errors.Is(err, secrets.ErrNotFound) || errors.Is(err, secrets.ErrPermissionDenied) || errors.Is(err, secrets.ErrMalformed)
}
