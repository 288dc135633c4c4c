package login

import (
	"net/http"

	"impo.com.uy/copetes/backend/shared/httpapi"
)

// authorize is the authorization endpoint and the hosted login page.
// TODO(issue 15): being built.
func (s *server) authorize(w http.ResponseWriter, r *http.Request) error {
	return httpapi.Errorf(http.StatusNotImplemented, "the authorization endpoint is not built yet")
}
