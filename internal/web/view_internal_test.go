package web

import "testing"

func TestShortFileIsFromTheModuleRoot(t *testing.T) {
	for _, tc := range []struct{ location, function, want string }{
		{"/work/wt/webui/examples/shop/shop.go:144", "github.com/rampartsec/rampart/examples/shop.(*Shop).searchProducts", "examples/shop/shop.go"},
		{"/home/ci/src/orders/internal/db/q.go:9", "example.com/orders/internal/db.Find", "orders/internal/db/q.go"},
		{"/build/main.go:3", "main.main", "/build/main.go"},
		{"/x/other/f.go:1", "example.com/pkg.F", "/x/other/f.go"},
		{"f.go:1", "", "f.go"},
	} {
		v := eventView{Location: tc.location}
		if tc.function != "" {
			v.Stack = []frame{{Function: tc.function}}
		}
		if got := v.ShortFile(); got != tc.want {
			t.Errorf("%s in %s: %q, want %q", tc.location, tc.function, got, tc.want)
		}
	}
}
