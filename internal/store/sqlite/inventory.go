package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// Heartbeat implements store.Store.
func (s *Store) Heartbeat(ctx context.Context, in store.Instance) error {
	return s.HeartbeatQuota(ctx, in, store.InstanceQuota{})
}

// HeartbeatQuota implements store.Store. SQLite has one writer at a time,
// so the count and the insert in one transaction cannot interleave with
// another heartbeat's.
func (s *Store) HeartbeatQuota(ctx context.Context, in store.Instance, q store.InstanceQuota) error {
	in, err := store.ValidateInstance(in)
	if err != nil {
		return err
	}
	var lists [4][]byte
	for i, v := range []any{in.Modules, in.Routes, in.Peers, in.DBDrivers} {
		if lists[i], err = json.Marshal(v); err != nil {
			return fmt.Errorf("sqlite: heartbeat: %w", err)
		}
	}
	now := time.Now().UnixNano()
	err = s.write(ctx, func(tx *sql.Tx) (int64, error) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO services (name, first_seen_ns) VALUES (?, ?)
			ON CONFLICT (name) DO NOTHING`, in.Service, now); err != nil {
			return 0, err
		}
		if q.Max > 0 {
			if err := makeRoom(ctx, tx, in, q); err != nil {
				return 0, err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO instances (service, id, version, go_version, modules, routes, peers, db_drivers,
			exposed, first_seen_ns, last_seen_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (service, id) DO UPDATE SET version = excluded.version, go_version = excluded.go_version,
			modules = excluded.modules, routes = excluded.routes, peers = excluded.peers, db_drivers = excluded.db_drivers,
			exposed = excluded.exposed, last_seen_ns = excluded.last_seen_ns`,
			in.Service, in.ID, in.Version, in.GoVersion, string(lists[0]), string(lists[1]), string(lists[2]), string(lists[3]),
			in.Exposed, now, now)
		return 0, err
	})
	if err != nil {
		return fmt.Errorf("sqlite: heartbeat: %w", err)
	}
	return nil
}

// makeRoom lets a new instance in under q: it does nothing for a known
// instance or a service under q.Max, deletes the service's instance seen
// longest ago if it is gone, and fails with store.ErrQuota otherwise.
func makeRoom(ctx context.Context, tx *sql.Tx, in store.Instance, q store.InstanceQuota) error {
	var known int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM instances WHERE service = ? AND id = ?`, in.Service, in.ID).Scan(&known)
	if err != nil || known > 0 {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM instances WHERE service = ?`, in.Service).Scan(&n); err != nil {
		return err
	}
	for ; n >= q.Max; n-- {
		res, err := tx.ExecContext(ctx, `DELETE FROM instances WHERE service = ? AND id = (
			SELECT id FROM instances WHERE service = ? AND last_seen_ns < ? ORDER BY last_seen_ns, id LIMIT 1)`,
			in.Service, in.Service, q.LiveAfter.UnixNano())
		if err != nil {
			return err
		}
		if deleted, err := res.RowsAffected(); err != nil || deleted == 0 {
			return errors.Join(err, fmt.Errorf("%w: service %s has %d live instances, the most allowed", store.ErrQuota, in.Service, q.Max))
		}
	}
	return nil
}

// usesModule is true for an instance row i whose build includes module ?.
const usesModule = `EXISTS (SELECT 1 FROM json_each(i.modules) m WHERE json_extract(m.value, '$.path') = ?)`

// Instances implements store.Store.
func (s *Store) Instances(ctx context.Context, f store.InstanceFilter) ([]store.Instance, error) {
	if err := store.ValidateInstanceFilter(f); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	add := func(cond string, a any) {
		where = append(where, cond)
		args = append(args, a)
	}
	if f.Service != "" {
		add(`i.service = ?`, f.Service)
	}
	if f.Module != "" {
		add(usesModule, f.Module)
	}
	if !f.SeenAfter.IsZero() {
		add(`i.last_seen_ns >= ?`, f.SeenAfter.UnixNano())
	}
	if !f.SeenBefore.IsZero() {
		add(`i.last_seen_ns < ?`, f.SeenBefore.UnixNano())
	}
	q := `SELECT service, id, version, go_version, modules, routes, peers, db_drivers, exposed, first_seen_ns, last_seen_ns
		FROM instances i`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY service, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: instances: %w", err)
	}
	defer rows.Close()
	out := []store.Instance{}
	for rows.Next() {
		var in store.Instance
		var modules, routes, peers, drivers string
		var first, last int64
		if err := rows.Scan(&in.Service, &in.ID, &in.Version, &in.GoVersion, &modules, &routes, &peers, &drivers,
			&in.Exposed, &first, &last); err != nil {
			return nil, fmt.Errorf("sqlite: instances: %w", err)
		}
		for _, l := range []struct {
			text string
			into any
		}{{modules, &in.Modules}, {routes, &in.Routes}, {peers, &in.Peers}, {drivers, &in.DBDrivers}} {
			if err := json.Unmarshal([]byte(l.text), l.into); err != nil {
				return nil, fmt.Errorf("sqlite: instances: %s/%s: %w", in.Service, in.ID, err)
			}
		}
		in.FirstSeen, in.LastSeen = fromNS(first), fromNS(last)
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: instances: %w", err)
	}
	return out, nil
}

// Services implements store.Store.
func (s *Store) Services(ctx context.Context, f store.ServiceFilter) ([]store.Service, error) {
	if err := store.ValidateServiceFilter(f); err != nil {
		return nil, err
	}
	return s.services(ctx, "", f)
}

// Service implements store.Store.
func (s *Store) Service(ctx context.Context, name string) (store.Service, error) {
	if err := store.ValidateServiceName(name); err != nil {
		return store.Service{}, err
	}
	svcs, err := s.services(ctx, name, store.ServiceFilter{})
	if err != nil {
		return store.Service{}, err
	}
	if len(svcs) == 0 {
		return store.Service{}, fmt.Errorf("sqlite: service %q: %w", name, store.ErrNotFound)
	}
	return svcs[0], nil
}

func (s *Store) services(ctx context.Context, name string, f store.ServiceFilter) ([]store.Service, error) {
	var where []string
	var args []any
	if name != "" {
		where = append(where, `s.name = ?`)
		args = append(args, name)
	}
	if f.Module != "" {
		where = append(where, `EXISTS (SELECT 1 FROM instances i WHERE i.service = s.name AND `+usesModule+`)`)
		args = append(args, f.Module)
	}
	q := `SELECT s.name, s.first_seen_ns, s.revoked_ns, COUNT(i.id), MAX(i.last_seen_ns), COALESCE(MAX(i.exposed), 0)
		FROM services s LEFT JOIN instances i ON i.service = s.name`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` GROUP BY s.name`
	if f.Exposed {
		q += ` HAVING MAX(i.exposed) = 1`
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY s.name`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: services: %w", err)
	}
	defer rows.Close()
	out := []store.Service{}
	for rows.Next() {
		var svc store.Service
		var first int64
		var revoked, last sql.NullInt64
		if err := rows.Scan(&svc.Name, &first, &revoked, &svc.Instances, &last, &svc.Exposed); err != nil {
			return nil, fmt.Errorf("sqlite: services: %w", err)
		}
		svc.FirstSeen, svc.Revoked, svc.LastSeen = fromNS(first), fromNullNS(revoked), fromNullNS(last)
		out = append(out, svc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: services: %w", err)
	}
	return out, nil
}

// SetServiceRevoked implements store.Store.
func (s *Store) SetServiceRevoked(ctx context.Context, name string, revoked bool) error {
	if err := store.ValidateServiceName(name); err != nil {
		return err
	}
	now := time.Now().UTC()
	err := s.write(ctx, func(tx *sql.Tx) (int64, error) {
		if revoked {
			// A second revocation keeps the time of the first.
			if _, err := tx.ExecContext(ctx, `INSERT INTO services (name, first_seen_ns, revoked_ns) VALUES (?, ?, ?)
				ON CONFLICT (name) DO UPDATE SET revoked_ns = COALESCE(services.revoked_ns, excluded.revoked_ns)`,
				name, now.UnixNano(), now.UnixNano()); err != nil {
				return 0, err
			}
		} else {
			res, err := tx.ExecContext(ctx, `UPDATE services SET revoked_ns = NULL WHERE name = ?`, name)
			if err != nil {
				return 0, err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return 0, err
			}
			if n == 0 {
				return 0, store.ErrNotFound
			}
		}
		return bump(ctx, tx, store.ChangeService, store.OpUpdate, name, now)
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("sqlite: service %q: %w", name, err)
		}
		return fmt.Errorf("sqlite: revoke service %q: %w", name, err)
	}
	return nil
}
