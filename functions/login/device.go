package login

import (
	"log/slog"
	"net/http"

	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/session"
)

// knownDevice returns the id of the device token the request carries in
// the device cookie, when it is valid and bound to the account name: that
// device logged in as it before, so an account-wide lock-out does not
// shut it out. Anything else is an unknown device ("").
func (s *server) knownDevice(r *http.Request, name string) string {
	c, err := r.Cookie(s.cfg.DeviceCookie)
	if err != nil {
		return ""
	}
	id, err := s.auth.Issuer.VerifyDevice(r.Context(), c.Value, accounts.NormalizeName(name))
	if err != nil {
		return ""
	}
	return id
}

// rememberDevice gives the client that just logged in as account a device
// token, in an HttpOnly cookie that only login's token endpoint needs. A
// failure costs the device its exemption, not the login.
func (s *server) rememberDevice(w http.ResponseWriter, r *http.Request, account string) {
	token, _, _, err := s.auth.Issuer.IssueDevice(r.Context(), account)
	if err != nil {
		slog.WarnContext(r.Context(), "could not issue a device token", "account", account, "error", err.Error())
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.cfg.DeviceCookie, Value: token, Path: "/", MaxAge: int(session.DeviceTTL.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
	})
}
