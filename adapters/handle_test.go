package adapters

import (
	"net/url"
	"testing"
)

// queryValue agrees with url.Values.Get on the launch handle parameter.
func TestQueryValue(t *testing.T) {
	for _, q := range []string{
		"", "launch_handle=abc", "x=1&launch_handle=abc&y=2", "launch_handle=a%2Fb",
		"launch%5Fhandle=abc", "launch_handle=first&launch_handle=second", "launch_handle=",
		"launch_handle", "launch_handle=%zz&launch_handle=ok", "a=%zz&launch_handle=ok", "launch_handle=a+b",
	} {
		want := ""
		if v, err := url.ParseQuery(q); err == nil || v != nil {
			want = v.Get("launch_handle")
		}
		if got := queryValue(q, "launch_handle"); got != want {
			t.Errorf("queryValue(%q) = %q, url.Values.Get = %q", q, got, want)
		}
	}
}
