package login

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"impo.com.uy/copetes/backend/shared/clients"
)

// registerClients replaces the clients secret with testClients as edit
// leaves them: what cmd/admin client update|remove and a push do.
func (ts *testServer) registerClients(t *testing.T, edit func([]clients.Client) []clients.Client) {
	t.Helper()
	cs := edit(slices.Clone(testClients))
	data, err := clients.Marshal(cs)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts.dir, "clients"), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// editClient returns an edit that changes the client id with change.
func editClient(id string, change func(*clients.Client)) func([]clients.Client) []clients.Client {
	return func(cs []clients.Client) []clients.Client {
		for i := range cs {
			if cs[i].ID == id {
				c := cs[i]
				c.RedirectURIs = slices.Clone(c.RedirectURIs)
				c.GrantTypes = slices.Clone(c.GrantTypes)
				change(&c)
				cs[i] = c
			}
		}
		return cs
	}
}

// The client's registration as it stands rules what was issued under
// an older one. An operator who removes a redirect URI (an application
// moved, or one of its deployments is compromised), a grant or the whole
// client expects what is outstanding for it to stop working: a code sent
// to that URI, and the refresh families started through it.
func TestRegistration_TheCurrentOneRulesWhatIsOutstanding(t *testing.T) {
	moved := webOrigin + "/callback-v2"
	tests := []struct {
		name        string
		edit        func([]clients.Client) []clients.Client
		codeStatus  int
		codeError   string
		refreshCode string
	}{
		{"the redirect URI removed", editClient(webClient, func(c *clients.Client) { c.RedirectURIs = []string{moved} }),
			400, "invalid_grant", "invalid_grant"},
		{"the refresh grant removed", editClient(webClient, func(c *clients.Client) {
			c.GrantTypes = []clients.Grant{clients.AuthorizationCode}
		}), 200, "", "unauthorized_client"},
		{"the client removed", func(cs []clients.Client) []clients.Client {
			return slices.DeleteFunc(cs, func(c clients.Client) bool { return c.ID == webClient })
		}, 401, "invalid_client", "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			writeClients(t, ts.dir)
			session := ts.codeFlow(t, webClient)
			code := ts.code(t, ts.grant(webClient, "ana"))

			ts.registerClients(t, tt.edit)

			r := ts.exchange(webClient, code)
			if tt.codeStatus == 200 {
				okTokens(t, r)
			} else {
				oauthError(t, r, tt.codeStatus, tt.codeError)
			}
			status := 400
			if tt.refreshCode == "invalid_client" {
				status = 401
			}
			oauthError(t, ts.refreshWith(webClient, session.Refresh), status, tt.refreshCode)

			// Put back as it was, the registration honours the family
			// again: refused, it was not spent or revoked.
			writeClients(t, ts.dir)
			okTokens(t, ts.refreshWith(webClient, session.Refresh))
		})
	}
}
