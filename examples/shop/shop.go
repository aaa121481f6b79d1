// Package shop is the sample service of the Rampart demo and end-to-end
// tests: a small JSON API over SQLite, protected by the Rampart SDK.
//
// One handler builds SQL by string concatenation on purpose — the bug that
// in-app protection exists for — and the others use parameters.
package shop

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/sqlguard"
	"modernc.org/sqlite"
)

// Shop is the service: its database and its routes.
type Shop struct {
	db     *sql.DB
	agent  *rampart.Agent
	logger *slog.Logger

	worker     *worker // nil until StartWorker
	stopWorker func()
}

// Open opens (and seeds, if empty) the SQLite database at path through the
// agent's SQL guard. Use ":memory:" for a throw-away database.
func Open(ctx context.Context, agent *rampart.Agent, path string, logger *slog.Logger) (*Shop, error) {
	g, err := sqlguard.New(agent, sqlguard.SQLite)
	if err != nil {
		return nil, err
	}
	db, err := g.Open(&sqlite.Driver{}, path)
	if err != nil {
		return nil, fmt.Errorf("shop: open %s: %w", path, err)
	}
	if path == ":memory:" {
		db.SetMaxOpenConns(1) // every connection would get its own empty database
	}
	if logger == nil {
		logger = slog.Default()
	}
	s := &Shop{db: db, agent: agent, logger: logger}
	if err := s.seed(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close stops the worker, if any, and closes the database.
func (s *Shop) Close() error {
	if s.stopWorker != nil {
		s.stopWorker()
	}
	return s.db.Close()
}

func (s *Shop) seed(ctx context.Context) error {
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price_cents INTEGER NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, api_key TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS reviews (id INTEGER PRIMARY KEY, product_id INTEGER NOT NULL, author TEXT NOT NULL, body TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS imports (id INTEGER PRIMARY KEY, url TEXT NOT NULL, status TEXT NOT NULL, bytes INTEGER NOT NULL DEFAULT 0, error TEXT)`,
		// Apart from users, so that a database made before the login
		// route gains it.
		`CREATE TABLE IF NOT EXISTS passwords (email TEXT PRIMARY KEY, salt BLOB NOT NULL, hash BLOB NOT NULL)`,
	}
	for _, q := range stmts {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("shop: create schema: %w", err)
		}
	}
	if err := s.seedPasswords(ctx); err != nil {
		return err
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM products`).Scan(&n); err != nil {
		return fmt.Errorf("shop: count products: %w", err)
	}
	if n > 0 {
		return nil
	}
	products := []struct {
		name  string
		price int
	}{{"Espresso cup", 900}, {"Pour-over kettle", 4500}, {"Burr grinder", 12900}, {"Oat milk (1 l)", 250}, {"Moka pot", 3200},
		{"Travel case (black)", 2400}}
	for _, p := range products {
		if _, err := s.db.ExecContext(ctx, `INSERT INTO products (name, price_cents) VALUES (?, ?)`, p.name, p.price); err != nil {
			return fmt.Errorf("shop: seed products: %w", err)
		}
	}
	users := [][2]string{{"ana@example.com", "sk_live_ana_7f3c9e"}, {"bo@example.com", "sk_live_bo_51d2aa"}}
	for _, u := range users {
		if _, err := s.db.ExecContext(ctx, `INSERT INTO users (email, api_key) VALUES (?, ?)`, u[0], u[1]); err != nil {
			return fmt.Errorf("shop: seed users: %w", err)
		}
	}
	return nil
}

// Product is one row of the catalogue.
type Product struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
}

// Review is a customer's review of a product.
type Review struct {
	ID        int64  `json:"id,omitempty"`
	ProductID int64  `json:"product_id"`
	Author    string `json:"author"`
	Body      string `json:"body"`
}

// Handler returns the service's routes (without the Rampart middleware; the
// caller wraps them, as a service author would).
func (s *Shop) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products", s.searchProducts)
	mux.HandleFunc("GET /products/{id}", s.getProduct)
	mux.HandleFunc("GET /products/{id}/reviews", s.listReviews)
	mux.HandleFunc("POST /reviews", s.addReview)
	mux.HandleFunc("POST /imports", s.createImport)
	mux.HandleFunc("GET /imports/{id}", s.getImport)
	mux.HandleFunc("POST /login", s.login)
	return mux
}

// searchProducts is VULNERABLE ON PURPOSE: it concatenates the search term
// into the statement. ?q=' UNION SELECT id, email || ' ' || api_key, 0 FROM users -- reads
// every customer's API key unless Rampart blocks it.
func (s *Shop) searchProducts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	rows, err := s.db.QueryContext(r.Context(), "SELECT id, name, price_cents FROM products WHERE name LIKE '%"+q+"%' ORDER BY id") // the bug RASP exists for
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer rows.Close()
	out := []Product{}
	for rows.Next() {
		var p Product
		if err := rows.Scan(&p.ID, &p.Name, &p.PriceCents); err != nil {
			s.fail(w, r, err)
			return
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// getProduct is parameterized: the path value travels as an argument.
func (s *Shop) getProduct(w http.ResponseWriter, r *http.Request) {
	var p Product
	err := s.db.QueryRowContext(r.Context(), `SELECT id, name, price_cents FROM products WHERE id = ?`, r.PathValue("id")).Scan(&p.ID, &p.Name, &p.PriceCents)
	if errors.Is(err, sql.ErrNoRows) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such product"})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Shop) listReviews(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "product id must be a number"})
		return
	}
	rows, err := s.db.QueryContext(r.Context(), `SELECT id, product_id, author, body FROM reviews WHERE product_id = ? ORDER BY id`, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer rows.Close()
	out := []Review{}
	for rows.Next() {
		var v Review
		if err := rows.Scan(&v.ID, &v.ProductID, &v.Author, &v.Body); err != nil {
			s.fail(w, r, err)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

// addReview takes a JSON body and stores it with parameters: text such as
// "'; DROP TABLE reviews; --" is stored as text, never blocked.
func (s *Shop) addReview(w http.ResponseWriter, r *http.Request) {
	var v Review
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if err := dec.Decode(&v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be a JSON review: " + err.Error()})
		return
	}
	if strings.TrimSpace(v.Author) == "" || strings.TrimSpace(v.Body) == "" || v.ProductID <= 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "product_id, author and body are required"})
		return
	}
	res, err := s.db.ExecContext(r.Context(), `INSERT INTO reviews (product_id, author, body) VALUES (?, ?, ?)`, v.ProductID, v.Author, v.Body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v.ID, _ = res.LastInsertId()
	writeJSON(w, http.StatusCreated, v)
}

// fail answers 500 for database errors. A call blocked by Rampart also lands
// here; the middleware then replaces this answer with its 403.
func (s *Shop) fail(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, rampart.ErrBlocked) {
		s.logger.ErrorContext(r.Context(), "shop: database error", "route", r.Pattern, "err", err)
	}
	writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
