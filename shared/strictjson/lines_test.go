package strictjson

import "testing"

func TestMarshalLines(t *testing.T) {
	type item struct {
		URL   string   `json:"url"`
		Roles []string `json:"roles"`
	}
	tests := []struct {
		name  string
		items []item
		want  string
	}{
		{"none", nil, "[\n]\n"},
		{"one", []item{{URL: "https://a.uy/?x=1&y=<2>", Roles: []string{}}}, "[\n  {\"url\":\"https://a.uy/?x=1&y=<2>\",\"roles\":[]}\n]\n"},
		{"two", []item{{URL: "a"}, {URL: "b", Roles: []string{"r"}}}, "[\n  {\"url\":\"a\",\"roles\":null},\n  {\"url\":\"b\",\"roles\":[\"r\"]}\n]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MarshalLines(tt.items)
			if err != nil || string(got) != tt.want {
				t.Fatalf("MarshalLines = %q, %v; want %q", got, err, tt.want)
			}
			if err := Check(got); err != nil {
				t.Fatalf("not strict JSON: %v", err)
			}
		})
	}
}
