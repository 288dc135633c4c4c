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
//
// Every cookie of the name is tried, a few at most: a sibling subdomain
// can set one of the same name for the parent domain with a longer path,
// which the browser sends first, and taking only the first would let it
// hide the real one (and the lock-out exemption with it).
func (s *server) knownDevice(r *http.Request, name string) string {
	const most = 4
	for i, c := range r.CookiesNamed(s.cfg.DeviceCookie) {
		if i == most {
			break
		}
		if id, err := s.auth.Issuer.VerifyDevice(r.Context(), c.Value, accounts.NormalizeName(name)); err == nil {
			return id
		}
	}
	return ""
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
