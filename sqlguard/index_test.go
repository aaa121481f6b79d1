package sqlguard

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestTheIndexNeverHidesAnOccurrence(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := "abcde ',()=-*/\x00\xff"
	for range 300 {
		var b strings.Builder
		for range 256 + r.IntN(2048) {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		stmt := b.String()
		x := newQueryIndex(stmt)
		for range 50 {
			i := r.IntN(len(stmt) - 4)
			j := i + 4 + r.IntN(min(60, len(stmt)-i-4)+1)
			if sub := stmt[i:j]; !x.mayContain(sub) {
				t.Fatalf("index denies %q which occurs at %d", sub, i)
			}
		}
	}
}

func TestTheIndexRejectsMostAbsentInputs(t *testing.T) {
	stmt := strings.Repeat("SELECT id, name, email FROM users WHERE tenant = $1 AND deleted_at IS NULL ORDER BY name; ", 20)
	x := newQueryIndex(stmt)
	absent := 0
	for _, in := range []string{"alice", "bob@example.com", "O'Brien", "1 OR 1=1", "Grüße", "select from the menu", "2024-05-01", "unrelated words here"} {
		if !strings.Contains(stmt, in) && !x.mayContain(in) {
			absent++
		}
	}
	if absent < 7 {
		t.Errorf("the index rejected only %d of 8 absent inputs", absent)
	}
}

func TestTheIndexCacheStaysBounded(t *testing.T) {
	var c indexCache
	long := strings.Repeat("x", indexMinLen)
	for i := range indexMaxEntries + 10 {
		c.get(long + strings.Repeat("y", i%7) + string(rune('a'+i%26)) + strings.Repeat("z", i))
	}
	if n := c.entries.Load(); n > indexMaxEntries {
		t.Errorf("%d entries after a flood of unique statements, want at most %d", n, indexMaxEntries)
	}
	stmt := long + " repeated"
	if c.get(stmt) != nil {
		t.Error("a statement seen once was indexed")
	}
	if c.get(stmt) == nil {
		t.Error("a statement seen twice was not indexed")
	}
}

func BenchmarkNewQueryIndex2KB(b *testing.B) {
	stmt := strings.Repeat("SELECT id, name, email FROM users WHERE tenant = $1 AND x IS NULL; ", 40)[:2048]
	b.SetBytes(int64(len(stmt)))
	for b.Loop() {
		newQueryIndex(stmt)
	}
}

func BenchmarkTokenize2KB(b *testing.B) {
	stmt := strings.Repeat("SELECT id, name, email FROM users WHERE tenant = $1 AND x IS NULL; ", 40)[:2048]
	toks := tokenize(Postgres, stmt, nil, false)
	b.SetBytes(int64(len(stmt)))
	for b.Loop() {
		toks = tokenize(Postgres, stmt, toks, false)
	}
}
