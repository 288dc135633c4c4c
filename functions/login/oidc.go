package login

import (
	"net/http"

	"impo.com.uy/copetes/backend/shared/httpapi"
)

// TODO(issue 15): discovery, userinfo and end session are being built.

func (s *server) discovery(w http.ResponseWriter, r *http.Request) error {
	return httpapi.Errorf(http.StatusNotImplemented, "discovery is not built yet")
}

func (s *server) userinfo(w http.ResponseWriter, r *http.Request) error {
	return httpapi.Errorf(http.StatusNotImplemented, "userinfo is not built yet")
}

func (s *server) endSession(w http.ResponseWriter, r *http.Request) error {
	return httpapi.Errorf(http.StatusNotImplemented, "end session is not built yet")
}
