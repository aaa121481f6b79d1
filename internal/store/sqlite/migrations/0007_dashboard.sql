-- The dashboard's queries.
--
-- actor_ip_key is the actor's address as "4" and 8 hex digits, or "6" and
-- 32 (see store.ActorIPKey): keys sort as the addresses do, so that the
-- events of a network are a range of them.
-- '' when the event names no address; NULL for the events stored before
-- this migration that name one, which the store fills in as it opens.
ALTER TABLE events ADD COLUMN actor_ip_key TEXT;
UPDATE events SET actor_ip_key = '' WHERE actor_ip = '';
CREATE INDEX events_actor_ip_key ON events (actor_ip_key, time_ns, id);
CREATE INDEX events_session      ON events (session_hash, time_ns, id);
-- A trace's events in time order, for an event's related events.
DROP INDEX events_trace;
CREATE INDEX events_trace        ON events (trace_id, time_ns, id);

-- An actor's alerts and decisions.
CREATE INDEX alerts_key          ON alerts (key, created_ns);
CREATE INDEX decisions_scope     ON decisions (scope, value);
-- What changed in the last hour.
CREATE INDEX services_first_seen  ON services (first_seen_ns);
CREATE INDEX instances_first_seen ON instances (first_seen_ns);
-- Policy changes.
CREATE INDEX changes_time        ON changes (time_ns);
