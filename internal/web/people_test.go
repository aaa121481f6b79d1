package web_test

import (
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/web"
)

func TestParsePeople(t *testing.T) {
	const h = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b" // sha256("secret")
	people, err := web.ParsePeople(strings.NewReader("# on-call\nalice " + h + "\n\nbob " + strings.ToUpper(h) + "\n"))
	if err != nil || len(people) != 2 || len(people["alice"]) != 32 || len(people["bob"]) != 32 {
		t.Fatalf("%v %v", people, err)
	}
	for _, bad := range []string{"alice", "alice zz", "alice " + h[:62], "admin " + h, "alice " + h + "\nalice " + h, "a b c"} {
		if _, err := web.ParsePeople(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
