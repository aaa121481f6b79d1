package policy_test

import (
	"reflect"
	"testing"

	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/policy/policytest"
)

func TestMarshalWritesWhatParseReadsBack(t *testing.T) {
	docs := map[string]string{
		"Small": policytest.Small,
		"Bench": policytest.Bench(),
		"edge and actor": `edge: [front, edge-eu]
services:
  orders:
    allow:
      - callers: [front]
        methods: [GET]
        paths: ["/orders/{id}"]
        actor: optional
      - callers: ["*"]
        actor: required
    sensitive:
      - methods: [DELETE]
        paths: ["/orders/{id...}"]
`,
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			want, err := policy.Parse(doc)
			if err != nil {
				t.Fatal(err)
			}
			text, err := want.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := policy.Parse(string(text))
			if err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("read back:\n%+v\nwant:\n%+v\ndocument:\n%s", got, want, text)
			}
		})
	}
}
