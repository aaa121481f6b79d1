//go:build race

package web_test

// raceEnabled: the race detector slows SQLite and the templates several
// times over; the heaviest tests then cover fewer cases (see their
// comments), so that the package stays within go test's default timeout.
const raceEnabled = true
