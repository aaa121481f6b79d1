package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rampartsec/rampart/internal/store"
)

// Heartbeat implements store.Store.
func (s *Store) Heartbeat(ctx context.Context, in store.Instance) error {
	return s.HeartbeatQuota(ctx, in, store.InstanceQuota{})
}

// HeartbeatQuota implements store.Store. The service's row, locked FOR
// UPDATE, serializes the heartbeats of new instances of one service across
// replicas, so that the count and the insert cannot interleave.
func (s *Store) HeartbeatQuota(ctx context.Context, in store.Instance, q store.InstanceQuota) error {
	in, err := store.ValidateInstance(in)
	if err != nil {
		return err
	}
	var lists [4][]byte
	for i, v := range []any{in.Modules, in.Routes, in.Peers, in.DBDrivers} {
		if lists[i], err = json.Marshal(v); err != nil {
			return fmt.Errorf("postgres: heartbeat: %w", err)
		}
	}
	now := time.Now().UnixNano()
	err = s.write(ctx, func(tx pgx.Tx) (int64, error) {
		if _, err := tx.Exec(ctx, `INSERT INTO services (name, first_seen_ns) VALUES ($1, $2)
			ON CONFLICT (name) DO NOTHING`, in.Service, now); err != nil {
			return 0, err
		}
		if q.Max > 0 {
			if err := makeRoom(ctx, tx, in, q); err != nil {
				return 0, err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO instances (service, id, version, go_version, modules, routes, peers, db_drivers,
			exposed, first_seen_ns, last_seen_ns) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
			ON CONFLICT (service, id) DO UPDATE SET version = excluded.version, go_version = excluded.go_version,
			modules = excluded.modules, routes = excluded.routes, peers = excluded.peers, db_drivers = excluded.db_drivers,
			exposed = excluded.exposed, last_seen_ns = excluded.last_seen_ns`,
			in.Service, in.ID, in.Version, in.GoVersion, string(lists[0]), string(lists[1]), string(lists[2]), string(lists[3]),
			in.Exposed, now)
		return 0, err
	})
	if err != nil {
		return fmt.Errorf("postgres: heartbeat: %w", err)
	}
	return nil
}

// makeRoom lets a new instance in under q: it does nothing for a known
// instance or a service under q.Max, deletes the service's instance seen
// longest ago if it is gone, and fails with store.ErrQuota otherwise.
func makeRoom(ctx context.Context, tx pgx.Tx, in store.Instance, q store.InstanceQuota) error {
	var known bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM instances WHERE service = $1 AND id = $2)`, in.Service, in.ID).Scan(&known)
	if err != nil || known {
		return err
	}
	// Lock the service, then count: a concurrent new instance of the same
	// service waits here until this transaction ends.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM services WHERE name = $1 FOR UPDATE`, in.Service); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM instances WHERE service = $1`, in.Service).Scan(&n); err != nil {
		return err
	}
	for ; n >= q.Max; n-- {
		tag, err := tx.Exec(ctx, `DELETE FROM instances WHERE service = $1 AND id = (
			SELECT id FROM instances WHERE service = $1 AND last_seen_ns < $2 ORDER BY last_seen_ns, id LIMIT 1)`,
			in.Service, q.LiveAfter.UnixNano())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: service %s has %d live instances, the most allowed", store.ErrQuota, in.Service, q.Max)
		}
	}
	return nil
}

// usesModule is true for an instance row i whose build includes the module
// in the given parameter; the GIN index on modules answers it.
func usesModule(param string) string {
	return `i.modules @> jsonb_build_array(jsonb_build_object('path', ` + param + `::text))`
}

// Instances implements store.Store.
func (s *Store) Instances(ctx context.Context, f store.InstanceFilter) ([]store.Instance, error) {
	if err := store.ValidateInstanceFilter(f); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	arg := func(a any) string {
		args = append(args, a)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Service != "" {
		where = append(where, `i.service = `+arg(f.Service))
	}
	if f.Module != "" {
		where = append(where, usesModule(arg(f.Module)))
	}
	if !f.SeenAfter.IsZero() {
		where = append(where, `i.last_seen_ns >= `+arg(f.SeenAfter.UnixNano()))
	}
	if !f.SeenBefore.IsZero() {
		where = append(where, `i.last_seen_ns < `+arg(f.SeenBefore.UnixNano()))
	}
	q := `SELECT service, id, version, go_version, modules, routes, peers, db_drivers, exposed, first_seen_ns, last_seen_ns
		FROM instances i`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	rows, err := s.pool.Query(ctx, q+` ORDER BY service, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: instances: %w", err)
	}
	out := []store.Instance{}
	var in store.Instance
	var modules, routes, peers, drivers []byte
	var first, last int64
	_, err = pgx.ForEachRow(rows, []any{&in.Service, &in.ID, &in.Version, &in.GoVersion, &modules, &routes, &peers, &drivers,
		&in.Exposed, &first, &last}, func() error {
		got := in
		for _, l := range []struct {
			text []byte
			into any
		}{{modules, &got.Modules}, {routes, &got.Routes}, {peers, &got.Peers}, {drivers, &got.DBDrivers}} {
			if err := json.Unmarshal(l.text, l.into); err != nil {
				return fmt.Errorf("%s/%s: %w", in.Service, in.ID, err)
			}
		}
		got.FirstSeen, got.LastSeen = fromNS(first), fromNS(last)
		out = append(out, got)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: instances: %w", err)
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
		return store.Service{}, fmt.Errorf("postgres: service %q: %w", name, store.ErrNotFound)
	}
	return svcs[0], nil
}

func (s *Store) services(ctx context.Context, name string, f store.ServiceFilter) ([]store.Service, error) {
	var where []string
	var args []any
	arg := func(a any) string {
		args = append(args, a)
		return "$" + strconv.Itoa(len(args))
	}
	if name != "" {
		where = append(where, `s.name = `+arg(name))
	}
	if f.Module != "" {
		where = append(where, `EXISTS (SELECT 1 FROM instances i WHERE i.service = s.name AND `+usesModule(arg(f.Module))+`)`)
	}
	q := `SELECT s.name, s.first_seen_ns, s.revoked_ns, COUNT(i.id), MAX(i.last_seen_ns), COALESCE(BOOL_OR(i.exposed), false)
		FROM services s LEFT JOIN instances i ON i.service = s.name`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` GROUP BY s.name`
	if f.Exposed {
		q += ` HAVING BOOL_OR(i.exposed)`
	}
	rows, err := s.pool.Query(ctx, q+` ORDER BY s.name`, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: services: %w", err)
	}
	out := []store.Service{}
	var svc store.Service
	var first int64
	var revoked, last *int64
	_, err = pgx.ForEachRow(rows, []any{&svc.Name, &first, &revoked, &svc.Instances, &last, &svc.Exposed}, func() error {
		svc.FirstSeen, svc.Revoked, svc.LastSeen = fromNS(first), fromNullNS(revoked), fromNullNS(last)
		out = append(out, svc)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: services: %w", err)
	}
	return out, nil
}

// SetServiceRevoked implements store.Store.
func (s *Store) SetServiceRevoked(ctx context.Context, name string, revoked bool) error {
	if err := store.ValidateServiceName(name); err != nil {
		return err
	}
	now := time.Now().UTC()
	err := s.write(ctx, func(tx pgx.Tx) (int64, error) {
		if revoked {
			// A second revocation keeps the time of the first.
			if _, err := tx.Exec(ctx, `INSERT INTO services (name, first_seen_ns, revoked_ns) VALUES ($1, $2, $2)
				ON CONFLICT (name) DO UPDATE SET revoked_ns = COALESCE(services.revoked_ns, excluded.revoked_ns)`,
				name, now.UnixNano()); err != nil {
				return 0, err
			}
		} else {
			tag, err := tx.Exec(ctx, `UPDATE services SET revoked_ns = NULL WHERE name = $1`, name)
			if err != nil {
				return 0, err
			}
			if tag.RowsAffected() == 0 {
				return 0, store.ErrNotFound
			}
		}
		return s.bump(ctx, tx, store.ChangeService, store.OpUpdate, name, now)
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("postgres: service %q: %w", name, err)
		}
		return fmt.Errorf("postgres: revoke service %q: %w", name, err)
	}
	return nil
}
