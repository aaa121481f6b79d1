package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// Heartbeat implements store.Store.
func (s *Store) Heartbeat(ctx context.Context, in store.Instance) error {
	return s.HeartbeatQuota(ctx, in, store.InstanceQuota{})
}

// HeartbeatQuota implements store.Store. The count and the insert cannot
// interleave with another heartbeat's: SQLite has one writer at a time, and
// PostgreSQL locks the service's row first (Dialect.LockService).
func (s *Store) HeartbeatQuota(ctx context.Context, in store.Instance, q store.InstanceQuota) error {
	in, err := store.ValidateInstance(in)
	if err != nil {
		return err
	}
	var lists [5]string // JSON text, which SQLite's TEXT and PostgreSQL's jsonb both take
	for i, v := range []any{in.Modules, in.Routes, in.Peers, in.DBDrivers, in.Callers} {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("%s: heartbeat: %w", s.d.Name, err)
		}
		lists[i] = string(b)
	}
	now := time.Now().UnixNano()
	err = s.write(ctx, func(tx Tx) (int64, error) {
		if _, err := tx.Exec(ctx, `INSERT INTO services (name, first_seen_ns) VALUES ($1, $2)
			ON CONFLICT (name) DO NOTHING`, in.Service, now); err != nil {
			return 0, err
		}
		if q.Max > 0 {
			if err := s.makeRoom(ctx, tx, in, q); err != nil {
				return 0, err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO instances (service, id, version, go_version, modules, routes, peers, db_drivers,
			exposed, first_seen_ns, last_seen_ns, callers) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)
			ON CONFLICT (service, id) DO UPDATE SET version = excluded.version, go_version = excluded.go_version,
			modules = excluded.modules, routes = excluded.routes, peers = excluded.peers, db_drivers = excluded.db_drivers,
			exposed = excluded.exposed, last_seen_ns = excluded.last_seen_ns, callers = excluded.callers`,
			in.Service, in.ID, in.Version, in.GoVersion, lists[0], lists[1], lists[2], lists[3],
			in.Exposed, now, lists[4])
		return 0, err
	})
	if err != nil {
		return fmt.Errorf("%s: heartbeat: %w", s.d.Name, err)
	}
	return nil
}

// makeRoom lets a new instance in under q: it does nothing for a known
// instance or a service under q.Max, deletes the service's instance seen
// longest ago if it is gone, and fails with store.ErrQuota otherwise.
func (s *Store) makeRoom(ctx context.Context, tx Tx, in store.Instance, q store.InstanceQuota) error {
	var known bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM instances WHERE service = $1 AND id = $2)`, in.Service, in.ID).Scan(&known)
	if err != nil || known {
		return err
	}
	// A concurrent new instance of the same service waits here until this
	// transaction ends.
	if err := lock(ctx, tx, s.d.LockService, in.Service); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM instances WHERE service = $1`, in.Service).Scan(&n); err != nil {
		return err
	}
	for ; n >= q.Max; n-- {
		deleted, err := tx.Exec(ctx, `DELETE FROM instances WHERE service = $1 AND id = (
			SELECT id FROM instances WHERE service = $1 AND last_seen_ns < $2 ORDER BY last_seen_ns, id LIMIT 1)`,
			in.Service, q.LiveAfter.UnixNano())
		if err != nil {
			return err
		}
		if deleted == 0 {
			return fmt.Errorf("%w: service %s has %d live instances, the most allowed", store.ErrQuota, in.Service, q.Max)
		}
	}
	return nil
}

// args collects a query's parameters and names each one.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// Instances implements store.Store.
func (s *Store) Instances(ctx context.Context, f store.InstanceFilter) ([]store.Instance, error) {
	if err := store.ValidateInstanceFilter(f); err != nil {
		return nil, err
	}
	var where []string
	var a args
	if f.Service != "" {
		where = append(where, `i.service = `+a.add(f.Service))
	}
	if f.Module != "" {
		where = append(where, s.d.UsesModule(a.add(f.Module)))
	}
	if !f.SeenAfter.IsZero() {
		where = append(where, `i.last_seen_ns >= `+a.add(f.SeenAfter.UnixNano()))
	}
	if !f.SeenBefore.IsZero() {
		where = append(where, `i.last_seen_ns < `+a.add(f.SeenBefore.UnixNano()))
	}
	cond := `1 = 1`
	if len(where) > 0 {
		cond = strings.Join(where, ` AND `)
	}
	out, err := s.instancesWhere(ctx, cond+` ORDER BY i.service, i.id`, a...)
	if err != nil {
		return nil, fmt.Errorf("%s: instances: %w", s.d.Name, err)
	}
	return out, nil
}

// instancesWhere returns the instances i that match cond, which may end
// with ORDER BY and LIMIT.
func (s *Store) instancesWhere(ctx context.Context, cond string, a ...any) ([]store.Instance, error) {
	rows, err := s.r.Query(ctx, `SELECT service, id, version, go_version, modules, routes, peers, db_drivers, exposed, first_seen_ns, last_seen_ns, callers
		FROM instances i WHERE `+cond, a...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Instance{}
	for rows.Next() {
		var in store.Instance
		var modules, routes, peers, drivers, callers []byte
		var first, last int64
		if err := rows.Scan(&in.Service, &in.ID, &in.Version, &in.GoVersion, &modules, &routes, &peers, &drivers,
			&in.Exposed, &first, &last, &callers); err != nil {
			return nil, err
		}
		for _, l := range []struct {
			text []byte
			into any
		}{{modules, &in.Modules}, {routes, &in.Routes}, {peers, &in.Peers}, {drivers, &in.DBDrivers}, {callers, &in.Callers}} {
			if err := json.Unmarshal(l.text, l.into); err != nil {
				return nil, fmt.Errorf("%s/%s: %w", in.Service, in.ID, err)
			}
		}
		in.FirstSeen, in.LastSeen = fromNS(first), fromNS(last)
		out = append(out, in)
	}
	return out, rows.Err()
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
		return store.Service{}, fmt.Errorf("%s: service %q: %w", s.d.Name, name, store.ErrNotFound)
	}
	return svcs[0], nil
}

func (s *Store) services(ctx context.Context, name string, f store.ServiceFilter) ([]store.Service, error) {
	var where []string
	var a args
	if name != "" {
		where = append(where, `s.name = `+a.add(name))
	}
	if f.Module != "" {
		where = append(where, `EXISTS (SELECT 1 FROM instances i WHERE i.service = s.name AND `+s.d.UsesModule(a.add(f.Module))+`)`)
	}
	q := `SELECT s.name, s.first_seen_ns, s.revoked_ns, COUNT(i.id), MAX(i.last_seen_ns), COALESCE(` + s.d.AnyExposed + `, false)
		FROM services s LEFT JOIN instances i ON i.service = s.name`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` GROUP BY s.name`
	if f.Exposed {
		q += ` HAVING ` + s.d.AnyExposed + ` = true`
	}
	rows, err := s.r.Query(ctx, q+` ORDER BY s.name`, a...)
	if err != nil {
		return nil, fmt.Errorf("%s: services: %w", s.d.Name, err)
	}
	defer rows.Close()
	out := []store.Service{}
	for rows.Next() {
		var svc store.Service
		var first int64
		var revoked, last *int64
		if err := rows.Scan(&svc.Name, &first, &revoked, &svc.Instances, &last, &svc.Exposed); err != nil {
			return nil, fmt.Errorf("%s: services: %w", s.d.Name, err)
		}
		svc.FirstSeen, svc.Revoked, svc.LastSeen = fromNS(first), fromNullNS(revoked), fromNullNS(last)
		out = append(out, svc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: services: %w", s.d.Name, err)
	}
	return out, nil
}

// SetServiceRevoked implements store.Store.
func (s *Store) SetServiceRevoked(ctx context.Context, name string, revoked bool) error {
	if err := store.ValidateServiceName(name); err != nil {
		return err
	}
	now := time.Now().UTC()
	err := s.write(ctx, func(tx Tx) (int64, error) {
		if revoked {
			// A second revocation keeps the time of the first.
			if _, err := tx.Exec(ctx, `INSERT INTO services (name, first_seen_ns, revoked_ns) VALUES ($1, $2, $2)
				ON CONFLICT (name) DO UPDATE SET revoked_ns = COALESCE(services.revoked_ns, excluded.revoked_ns)`,
				name, now.UnixNano()); err != nil {
				return 0, err
			}
		} else {
			n, err := tx.Exec(ctx, `UPDATE services SET revoked_ns = NULL WHERE name = $1`, name)
			if err != nil {
				return 0, err
			}
			if n == 0 {
				return 0, store.ErrNotFound
			}
		}
		return s.d.Bump(ctx, tx, store.ChangeService, store.OpUpdate, name, now)
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%s: service %q: %w", s.d.Name, name, err)
		}
		return fmt.Errorf("%s: revoke service %q: %w", s.d.Name, name, err)
	}
	return nil
}
