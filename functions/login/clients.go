package login

import (
	"context"
	"net/http"

	"impo.com.uy/copetes/backend/shared/clients"
	"impo.com.uy/copetes/backend/shared/httpapi"
)

// client returns the registered client id. A client id that is not
// registered is invalid_client (RFC 6749 §5.2); a clients secret that
// cannot be read is the operator's to fix (500) or an outage (503), like
// the accounts secret.
func (s *server) client(ctx context.Context, id string) (clients.Client, error) {
	list, err := s.clients.Get(ctx)
	if err != nil {
		return clients.Client{}, unavailable("cannot read the registered clients right now", err)
	}
	c, ok := list.Lookup(id)
	if !ok || id == "" {
		return clients.Client{}, &httpapi.Error{Status: http.StatusUnauthorized, OAuthCode: "invalid_client",
			Detail: "client_id names no registered client"}
	}
	return c, nil
}

// clientOrigin reports whether origin belongs to a registered client: such
// pages may read login's answers (CORS). A clients secret that cannot be
// read admits none.
func (s *server) clientOrigin(r *http.Request, origin string) bool {
	list, err := s.clients.Get(r.Context())
	if err != nil {
		return false
	}
	return list.HasOrigin(origin)
}

// trustedOrigins are the origins whose pages may send a person's
// credentials or cookie: CORS_ALLOWED_ORIGINS and the registered clients'.
func (s *server) trustedOrigins(ctx context.Context) []string {
	list, err := s.clients.Get(ctx)
	if err != nil {
		return s.cfg.CORSOrigins
	}
	return append(list.Origins(), s.cfg.CORSOrigins...)
}
