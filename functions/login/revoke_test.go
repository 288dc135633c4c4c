package login

import (
	"net/url"
	"testing"
)

func TestRevoke_ByAPublicClient(t *testing.T) {
	tests := []struct {
		name        string
		client      string
		token       func(tok tokens) string
		hint        string
		header      []string
		status      int
		wantRevoked bool
	}{
		{"its refresh token", webClient, func(tok tokens) string { return tok.Refresh }, "refresh_token", nil, 200, true},
		{"its refresh token, no hint", webClient, func(tok tokens) string { return tok.Refresh }, "", nil, 200, true},
		{"its refresh token, hinted as an access token", webClient, func(tok tokens) string { return tok.Refresh }, "access_token", nil, 200, true},
		{"its refresh token from its page", webClient, func(tok tokens) string { return tok.Refresh }, "refresh_token", []string{"Origin", webOrigin}, 200, true},
		{"another client's refresh token", deskClient, func(tok tokens) string { return tok.Refresh }, "refresh_token", nil, 200, false},
		{"an unknown token", webClient, func(tokens) string { return "nope" }, "", nil, 200, false},
		{"from a page of another origin", webClient, func(tok tokens) string { return tok.Refresh }, "", []string{"Origin", deskOrigin}, 403, false},
		{"an unregistered client_id is a service without its secret", "ghost", func(tok tokens) string { return tok.Refresh }, "", nil, 401, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			tok := ts.codeFlow(t, webClient)
			v := url.Values{"client_id": {tt.client}, "token": {tt.token(tok)}}
			if tt.hint != "" {
				v.Set("token_type_hint", tt.hint)
			}
			r := ts.post("/revoke", v, append([]string{"--"}, tt.header...)...)
			if r.Status != tt.status {
				t.Fatalf("revoke: %d %s, want %d", r.Status, r.Body, tt.status)
			}
			refresh := ts.refreshWith(webClient, tok.Refresh)
			if revoked := refresh.Status != 200; revoked != tt.wantRevoked {
				t.Fatalf("refresh after the revocation: %d %s; want revoked %v", refresh.Status, refresh.Body, tt.wantRevoked)
			}
			if tt.wantRevoked && ts.verify(tok.Access) == nil {
				t.Error("the family's access token outlived its revocation")
			}
		})
	}
	t.Run("its access token", func(t *testing.T) {
		ts := newTestServer(t, nil)
		tok := ts.codeFlow(t, webClient)
		if r := ts.post("/revoke", url.Values{"client_id": {deskClient}, "token": {tok.Access}}); r.Status != 200 || ts.verify(tok.Access) != nil {
			t.Fatalf("another client revoking web's access token: %d, %v", r.Status, ts.verify(tok.Access))
		}
		if r := ts.post("/revoke", url.Values{"client_id": {webClient}, "token": {tok.Access}, "token_type_hint": {"access_token"}}); r.Status != 200 {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		if ts.verify(tok.Access) == nil {
			t.Fatal("the access token outlived its revocation")
		}
	})
}
