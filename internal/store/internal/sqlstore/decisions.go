package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

const decisionColumns = `id, scope, value, action, rate_limit, reason, origin, created_ns, expires_ns, revision, alert_id, evidence, simulated`

// CreateDecision implements store.Store.
func (s *Store) CreateDecision(ctx context.Context, d store.Decision) (store.Decision, error) {
	now := time.Now().UTC()
	d, err := store.ValidateDecision(d, now)
	if err != nil {
		return store.Decision{}, err
	}
	d.ID = store.NewDecisionID()
	d.Created = now
	err = s.write(ctx, func(tx Tx) (int64, error) {
		rev, err := s.d.Bump(ctx, tx, store.ChangeDecision, store.OpCreate, d.ID, now)
		if err != nil {
			return 0, err
		}
		d.Revision = rev
		_, err = insertDecision(ctx, tx, d)
		return rev, err
	})
	if err != nil {
		return store.Decision{}, fmt.Errorf("%s: create decision: %w", s.d.Name, err)
	}
	return d, nil
}

// Decision implements store.Store.
func (s *Store) Decision(ctx context.Context, id string) (store.Decision, error) {
	if err := store.ValidateID("id", id); err != nil {
		return store.Decision{}, err
	}
	rows, err := s.r.Query(ctx, `SELECT `+decisionColumns+` FROM decisions WHERE id = $1`, id)
	if err != nil {
		return store.Decision{}, fmt.Errorf("%s: decision: %w", s.d.Name, err)
	}
	ds, err := scanDecisions(rows)
	if err != nil {
		return store.Decision{}, fmt.Errorf("%s: decision: %w", s.d.Name, err)
	}
	if len(ds) == 0 {
		return store.Decision{}, fmt.Errorf("%s: decision %q: %w", s.d.Name, id, store.ErrNotFound)
	}
	return ds[0], nil
}

// ListDecisions implements store.Store.
func (s *Store) ListDecisions(ctx context.Context, includeExpired bool) ([]store.Decision, error) {
	rows, err := s.r.Query(ctx, `SELECT `+decisionColumns+` FROM decisions
		WHERE $1 OR expires_ns IS NULL OR expires_ns > $2 ORDER BY created_ns, id`, includeExpired, time.Now().UnixNano())
	if err != nil {
		return nil, fmt.Errorf("%s: list decisions: %w", s.d.Name, err)
	}
	ds, err := scanDecisions(rows)
	if err != nil {
		return nil, fmt.Errorf("%s: list decisions: %w", s.d.Name, err)
	}
	return ds, nil
}

// insertDecision inserts d, unless a decision with its id is stored, and
// returns the rows inserted.
func insertDecision(ctx context.Context, tx Tx, d store.Decision) (int64, error) {
	evidence := ""
	if len(d.Evidence) > 0 {
		b, err := json.Marshal(d.Evidence)
		if err != nil {
			return 0, err
		}
		evidence = string(b)
	}
	return tx.Exec(ctx, `INSERT INTO decisions (`+decisionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (id) DO NOTHING`,
		d.ID, string(d.Scope), d.Value, string(d.Action), d.RateLimit, d.Reason, d.Origin,
		d.Created.UnixNano(), nullNS(d.Expires), d.Revision, d.AlertID, evidence, d.Simulated)
}

func scanDecisions(rows Rows) ([]store.Decision, error) {
	defer rows.Close()
	out := []store.Decision{}
	for rows.Next() {
		var d store.Decision
		var created int64
		var expires *int64
		var evidence string
		if err := rows.Scan(&d.ID, &d.Scope, &d.Value, &d.Action, &d.RateLimit, &d.Reason, &d.Origin,
			&created, &expires, &d.Revision, &d.AlertID, &evidence, &d.Simulated); err != nil {
			return nil, err
		}
		d.Created, d.Expires = fromNS(created), fromNullNS(expires)
		if evidence != "" {
			if err := json.Unmarshal([]byte(evidence), &d.Evidence); err != nil {
				return nil, fmt.Errorf("decision %s: evidence: %w", d.ID, err)
			}
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DeleteDecision implements store.Store.
func (s *Store) DeleteDecision(ctx context.Context, id string) error {
	if err := store.ValidateID("id", id); err != nil {
		return err
	}
	err := s.write(ctx, func(tx Tx) (int64, error) {
		n, err := tx.Exec(ctx, `DELETE FROM decisions WHERE id = $1`, id)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, store.ErrNotFound
		}
		return s.d.Bump(ctx, tx, store.ChangeDecision, store.OpDelete, id, time.Now().UTC())
	})
	if err != nil {
		return fmt.Errorf("%s: delete decision %q: %w", s.d.Name, id, err)
	}
	return nil
}

// PutPolicy implements store.Store.
func (s *Store) PutPolicy(ctx context.Context, yaml string, base int64) (store.Policy, error) {
	if err := store.ValidatePolicy(yaml); err != nil {
		return store.Policy{}, err
	}
	if base < store.AnyVersion {
		return store.Policy{}, &store.InvalidError{Field: "base", Reason: "negative"}
	}
	p := store.Policy{YAML: yaml, Created: time.Now().UTC()}
	err := s.write(ctx, func(tx Tx) (int64, error) {
		// Writers queue before reading the latest version, so two writers
		// from the same base cannot both win.
		if err := lock(ctx, tx, s.d.LockRevision); err != nil {
			return 0, err
		}
		var latest int64
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM policies`).Scan(&latest); err != nil {
			return 0, err
		}
		if base != store.AnyVersion && base != latest {
			return 0, fmt.Errorf("%w: the policy was changed from version %d, the latest is %d", store.ErrConflict, base, latest)
		}
		p.Version = latest + 1
		rev, err := s.d.Bump(ctx, tx, store.ChangePolicy, store.OpCreate, strconv.FormatInt(p.Version, 10), p.Created)
		if err != nil {
			return 0, err
		}
		p.Revision = rev
		_, err = tx.Exec(ctx, `INSERT INTO policies (version, yaml, created_ns, revision) VALUES ($1, $2, $3, $4)`,
			p.Version, p.YAML, p.Created.UnixNano(), p.Revision)
		return rev, err
	})
	if err != nil {
		return store.Policy{}, fmt.Errorf("%s: put policy: %w", s.d.Name, err)
	}
	return p, nil
}

// Policy implements store.Store.
func (s *Store) Policy(ctx context.Context, version int64) (store.Policy, error) {
	if version < 0 {
		return store.Policy{}, &store.InvalidError{Field: "version", Reason: "negative"}
	}
	var p store.Policy
	var created int64
	err := s.r.QueryRow(ctx, `SELECT version, yaml, created_ns, revision FROM policies
		WHERE $1 = 0 OR version = $1 ORDER BY version DESC LIMIT 1`, version).Scan(&p.Version, &p.YAML, &created, &p.Revision)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Policy{}, fmt.Errorf("%s: policy version %d: %w", s.d.Name, version, store.ErrNotFound)
	}
	if err != nil {
		return store.Policy{}, fmt.Errorf("%s: policy: %w", s.d.Name, err)
	}
	p.Created = fromNS(created)
	return p, nil
}

// PutTrustBundle implements store.Store.
func (s *Store) PutTrustBundle(ctx context.Context, data []byte) (store.TrustBundle, error) {
	if err := store.ValidateTrustBundle(data); err != nil {
		return store.TrustBundle{}, err
	}
	b := store.TrustBundle{Data: append([]byte(nil), data...), Updated: time.Now().UTC()}
	err := s.write(ctx, func(tx Tx) (int64, error) {
		rev, err := s.d.Bump(ctx, tx, store.ChangeTrustBundle, store.OpUpdate, "", b.Updated)
		if err != nil {
			return 0, err
		}
		b.Revision = rev
		_, err = tx.Exec(ctx, `INSERT INTO trust_bundle (id, data, updated_ns, revision) VALUES (1, $1, $2, $3)
			ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_ns = excluded.updated_ns, revision = excluded.revision`,
			b.Data, b.Updated.UnixNano(), b.Revision)
		return rev, err
	})
	if err != nil {
		return store.TrustBundle{}, fmt.Errorf("%s: put trust bundle: %w", s.d.Name, err)
	}
	return b, nil
}

// TrustBundle implements store.Store.
func (s *Store) TrustBundle(ctx context.Context) (store.TrustBundle, error) {
	var b store.TrustBundle
	var updated int64
	err := s.r.QueryRow(ctx, `SELECT data, updated_ns, revision FROM trust_bundle WHERE id = 1`).Scan(&b.Data, &updated, &b.Revision)
	if errors.Is(err, sql.ErrNoRows) {
		return store.TrustBundle{}, fmt.Errorf("%s: trust bundle: %w", s.d.Name, store.ErrNotFound)
	}
	if err != nil {
		return store.TrustBundle{}, fmt.Errorf("%s: trust bundle: %w", s.d.Name, err)
	}
	b.Updated = fromNS(updated)
	return b, nil
}
