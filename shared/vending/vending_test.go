package vending

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"impo.com.uy/copetes/backend/shared/googletoken"
	"impo.com.uy/copetes/backend/shared/tokenpolicy"
)

const (
	storage = "https://www.googleapis.com/auth/devstorage.read_only"
	cloud   = "https://www.googleapis.com/auth/cloud-platform"
)

func TestPlan(t *testing.T) {
	policy, err := tokenpolicy.Parse([]byte(`{"roles":{
		"reader":{"service_account":"vend-reader@impo.iam.gserviceaccount.com","scopes":["` + storage + `"],"audiences":["https://validate"],"max_lifetime":"30m"},
		"admin":{"scopes":["` + storage + `","` + cloud + `"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	toOrder := Planner{Source: googletoken.SelfSigned{}, Margin: 5 * time.Minute}
	fixed := Planner{Source: googletoken.ADC{}, Margin: 5 * time.Minute}
	tests := []struct {
		name    string
		p       Planner
		policy  *tokenpolicy.Policy
		roles   []string
		ask     Ask
		want    googletoken.Request
		wantErr string // "denied", "unservable" or ""
	}{
		{"scopes sorted, role's lifetime", toOrder, policy, []string{"admin"}, Ask{Scopes: []string{storage, cloud, storage}},
			googletoken.Request{Kind: googletoken.Access, Scopes: []string{cloud, storage}, Lifetime: time.Hour}, ""},
		{"lifetime rounded down to the step", toOrder, policy, []string{"reader"}, Ask{Scopes: []string{storage}, Lifetime: 17 * time.Minute},
			googletoken.Request{Kind: googletoken.Access, Scopes: []string{storage}, Lifetime: 15 * time.Minute, Account: "vend-reader@impo.iam.gserviceaccount.com"}, ""},
		{"the best of the caller's roles", toOrder, policy, []string{"reader", "admin"}, Ask{Scopes: []string{storage}},
			googletoken.Request{Kind: googletoken.Access, Scopes: []string{storage}, Lifetime: time.Hour}, ""},
		{"an ID token longer than the role allows", fixed, policy, []string{"reader"}, Ask{Audience: "https://validate", Lifetime: time.Hour},
			googletoken.Request{}, "unservable"},
		{"fixed source at its own lifetime", fixed, policy, []string{"admin"}, Ask{Scopes: []string{cloud}},
			googletoken.Request{Kind: googletoken.Access, Scopes: []string{cloud}}, ""},
		{"fixed source cannot shorten", fixed, policy, []string{"reader"}, Ask{Scopes: []string{storage}}, googletoken.Request{}, "unservable"},
		{"above the role's lifetime", toOrder, policy, []string{"reader"}, Ask{Scopes: []string{storage}, Lifetime: 31 * time.Minute}, googletoken.Request{}, "unservable"},
		{"under the margin", toOrder, policy, []string{"reader"}, Ask{Scopes: []string{storage}, Lifetime: 9 * time.Minute}, googletoken.Request{}, "unservable"},
		{"scopes from two roles are not pooled", toOrder, policy, []string{"reader"}, Ask{Scopes: []string{storage, cloud}}, googletoken.Request{}, "denied"},
		{"no role", toOrder, policy, nil, Ask{Scopes: []string{storage}}, googletoken.Request{}, "denied"},
		{"no policy", toOrder, nil, []string{"admin"}, Ask{Scopes: []string{storage}}, googletoken.Request{}, "denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.p.Plan(tt.policy, tt.roles, tt.ask)
			var unservable *UnservableError
			switch tt.wantErr {
			case "denied":
				if !errors.Is(err, ErrDenied) {
					t.Fatalf("error = %v, want ErrDenied", err)
				}
				return
			case "unservable":
				if !errors.As(err, &unservable) {
					t.Fatalf("error = %v, want *UnservableError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Plan (-want +got):\n%s", diff)
			}
		})
	}
}
