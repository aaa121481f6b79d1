package web

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// pageNames are the templates under templates/ that are whole pages.
var pageNames = []string{"login", "error", "overview", "events", "event", "actor", "decisions", "alerts", "alert",
	"scenarios", "services", "service", "policy"}

var funcs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"clock": func(t time.Time) string { return t.UTC().Format("15:04:05") },
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ago":   ago,
	"until": func(t, now time.Time) string {
		if t.IsZero() {
			return "never"
		}
		if !t.After(now) {
			return "expired " + ago(t, now)
		}
		return "in " + roundDuration(t.Sub(now))
	},
	"short": func(s string, n int) string { return truncate(s, n) },
	"label": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"join":  strings.Join,
	"add":   func(a, b int) int { return a + b },
	"pct": func(n, total int) int {
		if total == 0 {
			return 0
		}
		return n * 100 / total
	},
	"query": queryWith,
	"actorURL": func(scope, value string) string {
		return Prefix + "actor?" + url.Values{"scope": {scope}, "value": {value}}.Encode()
	},
	"eventURL":   func(id string) string { return Prefix + "events/" + url.PathEscape(id) },
	"serviceURL": func(name string) string { return Prefix + "services/" + url.PathEscape(name) },
	"alertURL":   func(id string) string { return Prefix + "alerts/" + url.PathEscape(id) },
	"prefix":     func() string { return Prefix },
	"list":       func(s ...string) []string { return s },
	"hasPrefix":  strings.HasPrefix,
	"bars": func(v barsView, key string) any {
		return struct {
			Rows []barRow
			Key  string
		}{v.Rows, key}
	},
	"dtable": func(list []decisionView, csrf, back string) any {
		return struct {
			List       []decisionView
			CSRF, Back string
		}{list, csrf, back}
	},
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + roundDuration(-d)
	}
	if d < time.Second {
		return "just now"
	}
	return roundDuration(d) + " ago"
}

func roundDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d"
}

// queryWith returns the page's query with key set to value (removed if "").
func queryWith(q url.Values, key, value string) string {
	c := url.Values{}
	for k, v := range q {
		c[k] = v
	}
	if value == "" {
		c.Del(key)
	} else {
		c.Set(key, value)
	}
	if key != "cursor" {
		c.Del("cursor") // a new filter starts at the first page
	}
	if len(c) == 0 {
		return "?"
	}
	return "?" + c.Encode()
}

func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// layout is what every page's frame needs.
type layout struct {
	Title string
	Nav   string
	Who   string
	CSRF  string
	Now   time.Time
	Query url.Values
	Data  any
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, s *session, data any) {
	h.renderTitled(w, r, status, name, "", s, data)
}

func (h *Handler) renderTitled(w http.ResponseWriter, r *http.Request, status int, name, title string, s *session, data any) {
	l := layout{Title: title, Nav: name, Now: h.cfg.Now().UTC(), Query: r.URL.Query(), Data: data}
	if s != nil {
		l.Who, l.CSRF = s.who, s.csrf
	}
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", l); err != nil {
		h.log.Error("web: render", "page", name, "err", err)
		http.Error(w, "the page could not be rendered; it is logged", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// renderPart renders one named template of a page, without the layout.
func (h *Handler) renderPart(page, part string, s *session, r *http.Request, data any) ([]byte, error) {
	l := layout{Nav: page, Now: h.cfg.Now().UTC(), Query: r.URL.Query(), Data: data}
	if s != nil {
		l.Who, l.CSRF = s.who, s.csrf
	}
	var buf bytes.Buffer
	err := h.pages[page].ExecuteTemplate(&buf, part, l)
	return buf.Bytes(), err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func itoa(n int) string { return strconv.Itoa(n) }
