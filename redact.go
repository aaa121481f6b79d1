package rampart

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"unicode"
)

// Redacted replaces the value of a secret-looking input wherever an event
// would show it: the input itself, the statement, URL, path or command in
// Event.Detail, the reason, and the request's path (a wildcard of the route
// pattern, "/reset/{token}", is an input named token). The markers around the input (⟦…⟧) stay, so
// the event still shows where the input went and why it was refused.
const Redacted = "[redacted]"

// minRedactLen is the shortest secret value that is searched for in an
// event's text: shorter values would blank out unrelated parts of a
// statement ("id", "1") while revealing next to nothing.
const minRedactLen = 3

// defaultSecretWords are the words of an input's name that make its value a
// secret. A name is split into words at punctuation and case changes
// ("X-Api-Key" → x, api, key; "resetToken" → reset, token), and each word is
// compared whole, so "monkey" or "keyword" are not secrets but "sort_key" is
// (a harmless over-redaction).
var defaultSecretWords = []string{
	"password", "passwd", "pwd", "pass", "passphrase", "secret", "token",
	"key", "apikey", "auth", "authorization", "cookie", "session", "sessionid",
	"sid", "credential", "credentials", "otp", "jwt", "bearer", "signature",
	"csrf", "xsrf", "private", "pin",
}

// secretNames decides which inputs are secrets. Its zero value uses the
// default words only.
type secretNames struct {
	extra map[string]bool // Config.SecretNames, lower-cased words
}

func newSecretNames(extra []string) secretNames {
	s := secretNames{}
	if len(extra) > 0 {
		s.extra = make(map[string]bool, len(extra))
		for _, w := range extra {
			for _, part := range nameWords(w) {
				s.extra[part] = true
			}
		}
	}
	return s
}

// SecretName reports whether the value of a parameter, key, header or
// cookie named name looks like a secret by the default words (those that
// Config.SecretNames adds to): a word of the name, split at punctuation and
// case changes, is password, token, key, session, cookie, authorization and
// the like. The gateway redacts what its WAF matched in such a value.
func SecretName(name string) bool { return secretNames{}.secret(Input{Name: name}) }

// secret reports whether in's value must not leave the process in clear.
// Every cookie is a secret: cookies are where sessions live.
func (s secretNames) secret(in Input) bool {
	if in.Source == SourceCookie {
		return true
	}
	for _, w := range nameWords(in.Name) {
		if s.extra[w] {
			return true
		}
		for _, d := range defaultSecretWords {
			if w == d {
				return true
			}
		}
	}
	return false
}

// nameWords splits a parameter, key or header name into lower-case words at
// non-letters and digits and at lower-to-upper case changes.
func nameWords(name string) []string {
	var words []string
	start := -1
	prevLower := false
	for i, r := range name {
		letter := unicode.IsLetter(r) || unicode.IsDigit(r)
		if !letter {
			if start >= 0 {
				words = append(words, strings.ToLower(name[start:i]))
				start = -1
			}
			prevLower = false
			continue
		}
		if start >= 0 && prevLower && unicode.IsUpper(r) {
			words = append(words, strings.ToLower(name[start:i]))
			start = i
		}
		if start < 0 {
			start = i
		}
		prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
	}
	if start >= 0 {
		words = append(words, strings.ToLower(name[start:]))
	}
	return words
}

// redact blanks the values of the secret inputs known in ctx out of ev,
// before anything is truncated, so that a secret cut at a limit cannot leak
// in part either.
func (a *Agent) redact(ctx context.Context, ev *Event) {
	var secrets []string
	if a.secrets.secret(ev.Input) && ev.Input.Value != "" {
		secrets = append(secrets, ev.Input.Value)
		ev.Input.Value = Redacted
		// What a guard marked is this input as it stood in the call,
		// possibly escaped or decoded: blank it whatever its spelling.
		ev.Detail = redactMarked(ev.Detail)
		// A guard's reason may quote the input as the sink would read it
		// (decoded, unescaped, cut), a spelling no search would find.
		ev.Reason = redactQuoted(ev.Reason)
	}
	for in := range Inputs(ctx) {
		// A key is recorded as an input whose value is its own name: the
		// name of a secret is not one.
		if len(in.Value) >= minRedactLen && in.Value != in.Name && a.secrets.secret(in) {
			secrets = append(secrets, in.Value)
		}
	}
	if len(secrets) == 0 {
		return
	}
	// A secret stands in a statement or URL as the application wrote it
	// there: escaped (O'Hara as O''Hara, or O\'Hara in MySQL) or
	// percent-encoded. Every such spelling is blanked, the longest first so
	// that no part of one survives a shorter one's replacement.
	var spelled []string
	for _, v := range secrets {
		if v != "" {
			spelled = append(spelled, spellings(v)...)
		}
	}
	slices.SortFunc(spelled, func(a, b string) int { return len(b) - len(a) })
	for _, v := range slices.Compact(spelled) {
		ev.Detail = strings.ReplaceAll(ev.Detail, v, Redacted)
		ev.Reason = strings.ReplaceAll(ev.Reason, v, Redacted)
		ev.Path = strings.ReplaceAll(ev.Path, v, Redacted)
		if ev.Input.Value != Redacted {
			ev.Input.Value = strings.ReplaceAll(ev.Input.Value, v, Redacted)
		}
	}
}

// Escapings an application applies to a value before concatenating it into
// a statement: quotes doubled (standard SQL), backslash escapes (MySQL,
// PostgreSQL E'...' strings, most languages' string literals), both.
var (
	doubledQuotes   = strings.NewReplacer(`'`, `''`, `"`, `""`)
	backslashed     = strings.NewReplacer(`\`, `\\`, `'`, `\'`, `"`, `\"`)
	backslashDouble = strings.NewReplacer(`\`, `\\`, `'`, `''`)
)

// spellings returns v and the ways an event's text may hold it (see redact).
func spellings(v string) []string {
	out := []string{v}
	if strings.ContainsAny(v, `'"\`) {
		out = append(out, doubledQuotes.Replace(v), backslashed.Replace(v), backslashDouble.Replace(v))
	}
	if e := url.QueryEscape(v); e != v {
		out = append(out, e)
	}
	if e := url.PathEscape(v); e != v {
		out = append(out, e)
	}
	return out
}

// redactMarked replaces the text between each ⟦ and ⟧ of detail.
func redactMarked(detail string) string {
	var b strings.Builder
	for {
		open := strings.Index(detail, "⟦")
		if open < 0 {
			break
		}
		rest := detail[open+len("⟦"):]
		end := strings.Index(rest, "⟧")
		if end < 0 {
			break
		}
		b.WriteString(detail[:open])
		b.WriteString("⟦" + Redacted + "⟧")
		detail = rest[end+len("⟧"):]
	}
	if b.Len() == 0 {
		return detail
	}
	b.WriteString(detail)
	return b.String()
}

// redactQuoted replaces the text of each double-quoted string of reason, as
// strconv.Quote and %q write them, by Redacted; an unterminated one runs to
// the end.
func redactQuoted(reason string) string {
	if strings.IndexByte(reason, '"') < 0 {
		return reason
	}
	var b strings.Builder
	for {
		open := strings.IndexByte(reason, '"')
		if open < 0 {
			break
		}
		b.WriteString(reason[:open+1])
		b.WriteString(Redacted)
		end := open + 1
		for end < len(reason) && reason[end] != '"' {
			if reason[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(reason) {
			b.WriteByte('"')
			return b.String()
		}
		b.WriteByte('"')
		reason = reason[end+1:]
	}
	b.WriteString(reason)
	return b.String()
}
