package googletoken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/compute/metadata"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/iamcredentials/v1"
	"google.golang.org/api/option"
)

// hour is the lifetime of Google-minted tokens: access tokens from the
// metadata server or a JWT-bearer exchange, and every Google ID token.
const hour = time.Hour

// ADC mints tokens with Application Default Credentials: on Google Cloud,
// the function's own runtime service account through the metadata server
// (GCE_METADATA_HOST overrides its address). No key exists anywhere.
type ADC struct{}

// Name implements Source.
func (ADC) Name() string { return "adc" }

// Lifetime implements Source: Google decides, one hour at most.
func (ADC) Lifetime(Kind) (bool, time.Duration) { return true, hour }

// Mint implements Source.
func (a ADC) Mint(ctx context.Context, req Request) (Token, error) {
	if req.Account != "" {
		return Token{}, fmt.Errorf("%w: adc mints only as the runtime's own account, not %s", ErrIdentity, req.Account)
	}
	creds, err := google.FindDefaultCredentials(ctx, req.Scopes...)
	if err != nil {
		return Token{}, upstream(a.Name(), err)
	}
	if req.Kind == Access {
		tok, err := creds.TokenSource.Token()
		if err != nil {
			return Token{}, upstream(a.Name(), err)
		}
		return Token{Value: tok.AccessToken, Expiry: tok.Expiry}, nil
	}
	if len(creds.JSON) > 0 {
		// ADC from a key file (GOOGLE_APPLICATION_CREDENTIALS): mint as
		// the key source does, if it is a service-account key.
		key, err := ParseKey(creds.JSON)
		if err != nil {
			return Token{}, fmt.Errorf("%w: ID tokens need a service account, not these credentials", ErrUnsupported)
		}
		return Key{Key: func(context.Context) (*ServiceAccountKey, error) { return key, nil }}.Mint(ctx, req)
	}
	// On Google Cloud: the metadata server's identity endpoint.
	v := url.Values{"audience": {req.Audience}, "format": {"full"}}
	idt, err := metadata.GetWithContext(ctx, "instance/service-accounts/default/identity?"+v.Encode())
	if err != nil {
		return Token{}, upstream(a.Name(), err)
	}
	exp, err := jwtExpiry(idt)
	if err != nil {
		return Token{}, upstream(a.Name(), err)
	}
	return Token{Value: idt, Expiry: exp}, nil
}

// Impersonate mints tokens for the service account each request names
// (Request.Account: the policy role's vended account) through the IAM
// Credentials API, authenticated as the runtime identity (ADC), which
// needs roles/iam.serviceAccountTokenCreator on exactly those accounts.
type Impersonate struct {
	Endpoint string // API base URL override ("" for Google's)
	MaxLife  time.Duration
}

// Name implements Source.
func (i Impersonate) Name() string { return "impersonate" }

// Lifetime implements Source: access tokens to order (up to an hour, or
// up to 12 h where the organization allows it); ID tokens last an hour.
func (i Impersonate) Lifetime(kind Kind) (bool, time.Duration) {
	if kind == ID {
		return true, hour
	}
	return false, i.MaxLife
}

// Mint implements Source.
func (i Impersonate) Mint(ctx context.Context, req Request) (Token, error) {
	if req.Account == "" {
		return Token{}, fmt.Errorf("%w: impersonate mints only for the service account a policy role names (service_account)", ErrIdentity)
	}
	base, err := google.DefaultTokenSource(ctx, "https://www.googleapis.com/auth/cloud-platform")
	if err != nil {
		return Token{}, upstream(i.Name(), err)
	}
	opts := []option.ClientOption{option.WithTokenSource(base)}
	if i.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(i.Endpoint))
	}
	svc, err := iamcredentials.NewService(ctx, opts...)
	if err != nil {
		return Token{}, upstream(i.Name(), err)
	}
	name := "projects/-/serviceAccounts/" + req.Account
	if req.Kind == Access {
		resp, err := svc.Projects.ServiceAccounts.GenerateAccessToken(name, &iamcredentials.GenerateAccessTokenRequest{
			Scope:    req.Scopes,
			Lifetime: strconv.Itoa(int(req.Lifetime/time.Second)) + "s",
		}).Context(ctx).Do()
		if err != nil {
			return Token{}, upstream(i.Name(), err)
		}
		exp, err := time.Parse(time.RFC3339, resp.ExpireTime)
		if err != nil {
			return Token{}, upstream(i.Name(), fmt.Errorf("expireTime %q: %w", resp.ExpireTime, err))
		}
		return Token{Value: resp.AccessToken, Expiry: exp}, nil
	}
	resp, err := svc.Projects.ServiceAccounts.GenerateIdToken(name, &iamcredentials.GenerateIdTokenRequest{
		Audience: req.Audience, IncludeEmail: true,
	}).Context(ctx).Do()
	if err != nil {
		return Token{}, upstream(i.Name(), err)
	}
	exp, err := jwtExpiry(resp.Token)
	if err != nil {
		return Token{}, upstream(i.Name(), err)
	}
	return Token{Value: resp.Token, Expiry: exp}, nil
}

// Key mints tokens with a service-account key from the secret store: the
// key signs an assertion that its token_uri exchanges for a Google token
// (OAuth2 JWT-bearer, RFC 7523).
type Key struct {
	Key func(context.Context) (*ServiceAccountKey, error)
}

// Name implements Source.
func (Key) Name() string { return "key" }

// Lifetime implements Source: Google decides, one hour.
func (Key) Lifetime(Kind) (bool, time.Duration) { return true, hour }

// Mint implements Source.
func (k Key) Mint(ctx context.Context, req Request) (Token, error) {
	key, err := k.Key(ctx)
	if err != nil {
		return Token{}, err
	}
	if err := key.mintsAs(req.Account); err != nil {
		return Token{}, err
	}
	// Back-dated by 10 s, as Google's own clients do: a clock slightly
	// ahead of Google's would otherwise make an assertion issued in the
	// future, which the token endpoint refuses.
	now := time.Now().Add(-10 * time.Second)
	c := claims{Iss: key.Email, Aud: key.TokenURI, Iat: now.Unix(), Exp: now.Add(hour).Unix()}
	if req.Kind == ID {
		c.TargetAudience = req.Audience
	} else {
		c.Scope = strings.Join(req.Scopes, " ")
	}
	assertion, err := key.sign(c)
	if err != nil {
		return Token{}, err
	}
	tok, err := exchange(ctx, key.TokenURI, assertion, req.Kind)
	if err != nil {
		return Token{}, upstream(k.Name(), err)
	}
	return tok, nil
}

// exchange trades a signed assertion for a token at tokenURI (RFC 7523
// §2.1), with the HTTP client that ctx carries for oauth2, if any. A
// refusal is an *oauth2.RetrieveError, as from any oauth2 token source.
func exchange(ctx context.Context, tokenURI, assertion string, kind Kind) (Token, error) {
	hc, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	if hc == nil {
		hc = http.DefaultClient
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURI, strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, err
	}
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(hr)
	if err != nil {
		return Token{}, fmt.Errorf("oauth2: cannot fetch token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Token{}, fmt.Errorf("oauth2: cannot fetch token: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Token{}, &oauth2.RetrieveError{Response: resp, Body: body}
	}
	var r struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		IDToken     string `json:"id_token"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return Token{}, fmt.Errorf("oauth2: cannot fetch token: %w", err)
	}
	if kind == ID {
		if r.IDToken == "" {
			return Token{}, errors.New("oauth2: response doesn't have JWT token")
		}
		exp, err := jwtExpiry(r.IDToken)
		if err != nil {
			return Token{}, err
		}
		return Token{Value: r.IDToken, Expiry: exp}, nil
	}
	var exp time.Time
	if r.ExpiresIn > 0 {
		exp = time.Now().Add(time.Duration(r.ExpiresIn) * time.Second)
	}
	return Token{Value: r.AccessToken, Expiry: exp}, nil
}

// SelfSigned makes access tokens without any network: a JWT signed by the
// service-account key, carrying the scopes, that Google APIs accept in
// place of an access token. It cannot make ID tokens (only Google signs
// those). The local default, with the dev key the bootstrap makes.
type SelfSigned struct {
	Key func(context.Context) (*ServiceAccountKey, error)
	Now func() time.Time
}

// Name implements Source.
func (SelfSigned) Name() string { return "selfsigned" }

// Lifetime implements Source: to order, up to an hour (Google's limit for
// self-signed JWTs).
func (SelfSigned) Lifetime(Kind) (bool, time.Duration) { return false, hour }

// Mint implements Source.
func (s SelfSigned) Mint(ctx context.Context, req Request) (Token, error) {
	if req.Kind != Access {
		return Token{}, fmt.Errorf("%w: selfsigned makes access tokens only; ID tokens need adc, impersonate or key", ErrUnsupported)
	}
	key, err := s.Key(ctx)
	if err != nil {
		return Token{}, err
	}
	if err := key.mintsAs(req.Account); err != nil {
		return Token{}, err
	}
	now := s.Now()
	c := claims{
		Iss:   key.Email,
		Sub:   key.Email,
		Scope: strings.Join(req.Scopes, " "),
		Iat:   now.Unix(),
		Exp:   now.Add(req.Lifetime).Unix(),
	}
	tok, err := key.sign(c)
	if err != nil {
		return Token{}, fmt.Errorf("sign a self-signed token: %w", err)
	}
	return Token{Value: tok, Expiry: time.Unix(c.Exp, 0)}, nil
}

// mintsAs refuses an account other than the key's own: a key mints only
// as itself ("" asks for that).
func (k *ServiceAccountKey) mintsAs(account string) error {
	if account != "" && account != k.Email {
		return fmt.Errorf("%w: the key mints only as %s, not %s", ErrIdentity, k.Email, account)
	}
	return nil
}
