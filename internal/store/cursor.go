package store

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// Cursor is a position in the (Time, ID) order of events. Its text form,
// from String, is opaque to API clients.
type Cursor struct {
	Time time.Time
	ID   string
}

// String encodes c for an API response.
func (c Cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.Time.UnixNano(), 10) + ":" + c.ID))
}

// ParseCursor decodes the text form of a cursor; a malformed one is an
// *InvalidError for field "cursor".
func ParseCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, invalid("cursor", "malformed")
	}
	ns, id, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || identifier("cursor", id) != nil {
		return Cursor{}, invalid("cursor", "malformed")
	}
	return Cursor{Time: time.Unix(0, n).UTC(), ID: id}, nil
}
