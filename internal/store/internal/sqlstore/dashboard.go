package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// dimensionColumns are the columns (or the expression, for the bucket) of
// CountEvents's dimensions.
var dimensionColumns = map[store.EventDimension]string{
	store.ByKind: "kind", store.ByService: "service", store.ByAction: "action", store.ByActorIP: "actor_ip",
	store.ByActorUser: "actor_user", store.BySession: "session_hash", store.ByRoute: "route", store.ByTrace: "trace_id",
}

// CountEvents implements store.Store: one GROUP BY in the database.
func (s *Store) CountEvents(ctx context.Context, q store.EventCountQuery) ([]store.EventCount, error) {
	q, err := store.ValidateEventCountQuery(q)
	if err != nil {
		return nil, err
	}
	var a args
	where := eventWhere(q.Filter, &a)
	cols := make([]string, len(q.By))
	for i, d := range q.By {
		if d == store.ByBucket {
			// time_ns >= since (the filter), so the division truncates
			// toward the bucket's start in both engines.
			cols[i] = `((time_ns - ` + a.add(q.Filter.Since.UnixNano()) + `) / ` + a.add(q.Bucket.Nanoseconds()) + `)`
		} else {
			cols[i] = dimensionColumns[d]
		}
	}
	sel := slices.Clone(cols)
	sel = append(sel, `COUNT(*)`, `SUM(CASE WHEN action <> `+a.add(store.ActionObserved)+` THEN 1 ELSE 0 END)`, `MAX(time_ns)`)
	query := `SELECT ` + strings.Join(sel, `, `) + ` FROM events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	order := []string{`COUNT(*) DESC`}
	if q.ByAttacks {
		order = []string{`SUM(CASE WHEN action <> ` + a.add(store.ActionObserved) + ` THEN 1 ELSE 0 END) DESC`, `COUNT(*) DESC`}
	}
	if len(cols) > 0 {
		query += ` GROUP BY ` + strings.Join(positions(len(cols)), `, `)
		order = append(order, positions(len(cols))...)
	}
	query += ` ORDER BY ` + strings.Join(order, `, `) + ` LIMIT ` + a.add(q.Limit)
	rows, err := s.r.Query(ctx, query, a...)
	if err != nil {
		return nil, fmt.Errorf("%s: count events: %w", s.d.Name, err)
	}
	defer rows.Close()
	out := []store.EventCount{}
	for rows.Next() {
		var c store.EventCount
		var bucket, last *int64 // MAX is NULL over no rows
		var attacks *int64      // SUM too
		dest := make([]any, 0, len(q.By)+3)
		for _, d := range q.By {
			switch d {
			case store.ByBucket:
				dest = append(dest, &bucket)
			case store.ByKind:
				dest = append(dest, &c.Kind)
			case store.ByService:
				dest = append(dest, &c.Service)
			case store.ByAction:
				dest = append(dest, &c.Action)
			case store.ByActorIP:
				dest = append(dest, &c.ActorIP)
			case store.ByActorUser:
				dest = append(dest, &c.ActorUser)
			case store.BySession:
				dest = append(dest, &c.SessionHash)
			case store.ByRoute:
				dest = append(dest, &c.Route)
			case store.ByTrace:
				dest = append(dest, &c.TraceID)
			}
		}
		dest = append(dest, &c.Count, &attacks, &last)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("%s: count events: %w", s.d.Name, err)
		}
		if c.Count == 0 {
			continue // no GROUP BY over no events: one row of zeros
		}
		if bucket != nil {
			c.Bucket = q.Filter.Since.Add(time.Duration(*bucket) * q.Bucket)
		}
		if attacks != nil {
			c.Attacks = *attacks
		}
		c.Last = fromNullNS(last)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: count events: %w", s.d.Name, err)
	}
	return out, nil
}

// positions returns "1", "2", … "n": columns of the select list by
// position, which both engines accept in GROUP BY and ORDER BY.
func positions(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(i + 1)
	}
	return out
}

// ActorDecisions implements store.Store.
func (s *Store) ActorDecisions(ctx context.Context, act store.Actor) ([]store.Decision, error) {
	act, err := store.ValidateActor(act)
	if err != nil {
		return nil, err
	}
	var a args
	var where string
	switch act.Scope {
	case store.ScopeIP:
		// Networks are few next to addresses: every network, then Covers.
		where = `(scope = 'ip' AND value = ` + a.add(act.Value) + `) OR scope = 'cidr'`
	case store.ScopeCIDR:
		where = `scope IN ('ip', 'cidr')`
	default:
		where = `scope = ` + a.add(string(act.Scope)) + ` AND value = ` + a.add(act.Value)
	}
	rows, err := s.r.Query(ctx, `SELECT `+decisionColumns+` FROM decisions WHERE `+where+` ORDER BY created_ns, id`, a...)
	if err != nil {
		return nil, fmt.Errorf("%s: actor decisions: %w", s.d.Name, err)
	}
	ds, err := scanDecisions(rows)
	if err != nil {
		return nil, fmt.Errorf("%s: actor decisions: %w", s.d.Name, err)
	}
	ds = slices.DeleteFunc(ds, func(d store.Decision) bool { return !act.Covers(d) })
	if ds == nil {
		ds = []store.Decision{}
	}
	return ds, nil
}

// PolicyVersions implements store.Store.
func (s *Store) PolicyVersions(ctx context.Context, before int64, limit int) ([]store.PolicyVersion, error) {
	if before < 0 {
		return nil, &store.InvalidError{Field: "before", Reason: "negative"}
	}
	limit, err := limitOf(limit)
	if err != nil {
		return nil, err
	}
	// The text is hashed here rather than in SQL: neither engine's hash
	// function is in both. Versions are at most MaxPolicySize each, and a
	// page at most MaxQueryLimit of them.
	rows, err := s.r.Query(ctx, `SELECT version, yaml, created_ns, revision FROM policies
		WHERE $1 = 0 OR version < $1 ORDER BY version DESC LIMIT $2`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("%s: policy versions: %w", s.d.Name, err)
	}
	defer rows.Close()
	out := []store.PolicyVersion{}
	for rows.Next() {
		var v store.PolicyVersion
		var text string
		var created int64
		if err := rows.Scan(&v.Version, &text, &created, &v.Revision); err != nil {
			return nil, fmt.Errorf("%s: policy versions: %w", s.d.Name, err)
		}
		sum := sha256.Sum256([]byte(text))
		v.Created, v.Size, v.SHA256 = fromNS(created), len(text), hex.EncodeToString(sum[:])
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: policy versions: %w", s.d.Name, err)
	}
	return out, nil
}

// Activity implements store.Store.
func (s *Store) Activity(ctx context.Context, since time.Time) (store.Activity, error) {
	if since.IsZero() {
		return store.Activity{}, &store.InvalidError{Field: "since", Reason: "missing"}
	}
	act := store.Activity{Since: since.UTC(), Changes: []store.Change{}, Services: []store.Service{}, Instances: []store.Instance{}}
	ns := since.UnixNano()
	rows, err := s.r.Query(ctx, `SELECT revision, kind, op, key, time_ns FROM changes
		WHERE time_ns >= $1 ORDER BY revision DESC LIMIT $2`, ns, store.MaxChanges)
	if err != nil {
		return store.Activity{}, fmt.Errorf("%s: activity: %w", s.d.Name, err)
	}
	for rows.Next() {
		var c store.Change
		var t int64
		if err := rows.Scan(&c.Revision, &c.Kind, &c.Op, &c.Key, &t); err != nil {
			rows.Close()
			return store.Activity{}, fmt.Errorf("%s: activity: %w", s.d.Name, err)
		}
		c.Time = fromNS(t)
		act.Changes = append(act.Changes, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return store.Activity{}, fmt.Errorf("%s: activity: %w", s.d.Name, err)
	}
	svcs, err := s.services(ctx, "", store.ServiceFilter{})
	if err != nil {
		return store.Activity{}, err
	}
	for _, sv := range svcs {
		if !sv.FirstSeen.Before(since) {
			act.Services = append(act.Services, sv)
		}
	}
	slices.SortFunc(act.Services, func(a, b store.Service) int { return b.FirstSeen.Compare(a.FirstSeen) })
	if len(act.Services) > store.MaxQueryLimit {
		act.Services = act.Services[:store.MaxQueryLimit]
	}
	ins, err := s.instancesWhere(ctx, `i.first_seen_ns >= $1 ORDER BY i.first_seen_ns DESC, i.service, i.id LIMIT $2`, ns, store.MaxQueryLimit)
	if err != nil {
		return store.Activity{}, fmt.Errorf("%s: activity: %w", s.d.Name, err)
	}
	act.Instances = ins
	return act, nil
}

// AlertsByKey implements store.Store.
func (s *Store) AlertsByKey(ctx context.Context, key string, ids []string) ([]store.Alert, error) {
	if len(ids) > store.MaxQueryLimit {
		return nil, &store.InvalidError{Field: "ids", Reason: fmt.Sprintf("%d, at most %d", len(ids), store.MaxQueryLimit)}
	}
	var a args
	conds := []string{`key = ` + a.add(key)}
	if len(ids) > 0 {
		marks := make([]string, len(ids))
		for i, id := range ids {
			marks[i] = a.add(id)
		}
		conds = append(conds, `id IN (`+strings.Join(marks, `, `)+`)`)
	}
	rows, err := s.r.Query(ctx, `SELECT `+alertColumns+` FROM alerts WHERE `+strings.Join(conds, ` OR `)+
		` ORDER BY created_ns DESC, id DESC LIMIT `+a.add(store.MaxQueryLimit), a...)
	if err != nil {
		return nil, fmt.Errorf("%s: alerts by key: %w", s.d.Name, err)
	}
	as, err := scanAlerts(rows)
	if err != nil {
		return nil, fmt.Errorf("%s: alerts by key: %w", s.d.Name, err)
	}
	return as, nil
}

// BackfillActorIPKeys fills in the actor_ip_key of the events stored
// before the column existed (migration 0006), in batches, and returns how
// many it filled. The stores call it as they open; once done, it finds
// nothing at once (the NULL keys are at one end of their index).
func (s *Store) BackfillActorIPKeys(ctx context.Context) (int, error) {
	const batch = 1000
	total := 0
	for {
		rows, err := s.w.Query(ctx, `SELECT id, actor_ip FROM events WHERE actor_ip_key IS NULL LIMIT $1`, batch)
		if err != nil {
			return total, fmt.Errorf("%s: backfill actor ip keys: %w", s.d.Name, err)
		}
		type row struct{ id, ip string }
		var todo []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.ip); err != nil {
				rows.Close()
				return total, fmt.Errorf("%s: backfill actor ip keys: %w", s.d.Name, err)
			}
			todo = append(todo, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return total, fmt.Errorf("%s: backfill actor ip keys: %w", s.d.Name, err)
		}
		if len(todo) == 0 {
			return total, nil
		}
		err = s.write(ctx, func(tx Tx) (int64, error) {
			for _, r := range todo {
				if _, err := tx.Exec(ctx, `UPDATE events SET actor_ip_key = $1 WHERE id = $2`, store.ActorIPKey(r.ip), r.id); err != nil {
					return 0, err
				}
			}
			return 0, nil
		})
		if err != nil {
			return total, fmt.Errorf("%s: backfill actor ip keys: %w", s.d.Name, err)
		}
		total += len(todo)
	}
}

// LiveInstances implements store.Store.
func (s *Store) LiveInstances(ctx context.Context, seenAfter time.Time) (map[string]int, error) {
	rows, err := s.r.Query(ctx, `SELECT service, COUNT(*) FROM instances WHERE last_seen_ns >= $1 GROUP BY service`, seenAfter.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("%s: live instances: %w", s.d.Name, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			return nil, fmt.Errorf("%s: live instances: %w", s.d.Name, err)
		}
		out[name] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: live instances: %w", s.d.Name, err)
	}
	return out, nil
}

// InstanceLinks implements store.Store.
func (s *Store) InstanceLinks(ctx context.Context) ([]store.InstanceLinks, error) {
	rows, err := s.r.Query(ctx, `SELECT service, id, peers, callers, exposed, last_seen_ns FROM instances ORDER BY service, id`)
	if err != nil {
		return nil, fmt.Errorf("%s: instance links: %w", s.d.Name, err)
	}
	defer rows.Close()
	out := []store.InstanceLinks{}
	for rows.Next() {
		var l store.InstanceLinks
		var peers, callers []byte
		var last int64
		if err := rows.Scan(&l.Service, &l.ID, &peers, &callers, &l.Exposed, &last); err != nil {
			return nil, fmt.Errorf("%s: instance links: %w", s.d.Name, err)
		}
		if err := json.Unmarshal(peers, &l.Peers); err != nil {
			return nil, fmt.Errorf("%s: instance links: %s/%s: %w", s.d.Name, l.Service, l.ID, err)
		}
		if err := json.Unmarshal(callers, &l.Callers); err != nil {
			return nil, fmt.Errorf("%s: instance links: %s/%s: %w", s.d.Name, l.Service, l.ID, err)
		}
		l.LastSeen = fromNS(last)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: instance links: %w", s.d.Name, err)
	}
	return out, nil
}
