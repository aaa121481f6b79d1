package web

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// ParsePeople reads per-person credentials (Config.People): one person a
// line, "name sha256-hex", the SHA-256 of the secret that person signs in
// with (echo -n SECRET | sha256sum); blank lines and lines starting with #
// are skipped. The file holds no secret, only their hashes.
func ParsePeople(r io.Reader) (map[string][]byte, error) {
	people := map[string][]byte{}
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("web: people line %d: want \"name sha256-hex\"", n)
		}
		hash, err := hex.DecodeString(f[1])
		if err != nil || len(hash) != 32 {
			return nil, fmt.Errorf("web: people line %d: %q is not a SHA-256 in hex", n, truncate(f[1], 80))
		}
		if f[0] == "admin" || len(f[0]) > 64 {
			return nil, fmt.Errorf("web: people line %d: %q is not a name a person may have", n, truncate(f[0], 80))
		}
		if _, dup := people[f[0]]; dup {
			return nil, fmt.Errorf("web: people line %d: %s is named twice", n, f[0])
		}
		people[f[0]] = hash
	}
	return people, sc.Err()
}
