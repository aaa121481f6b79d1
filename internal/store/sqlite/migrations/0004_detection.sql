-- Detection (package control runs package detect over the events).
--
-- seq numbers events in the order they were committed (SQLite has one
-- writer at a time, which bumps event_seq in the transaction that
-- inserts). The detection leader reads the events after its cursor in that
-- order. Events stored before have no seq: detection never reads them.
CREATE TABLE event_seq (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	value INTEGER NOT NULL
);
INSERT INTO event_seq (id, value) VALUES (1, 0);
ALTER TABLE events ADD COLUMN seq INTEGER;
CREATE UNIQUE INDEX events_seq ON events (seq);

-- Where a reader of the event log is: the last seq it has processed.
CREATE TABLE cursors (
	name       TEXT    PRIMARY KEY,
	seq        INTEGER NOT NULL,
	updated_ns INTEGER NOT NULL
);

-- Alerts the detection engine raised. The id is derived from the alert
-- (scenario, key, first evidence event), so that processing again the
-- events of an alert already stored stores nothing.
CREATE TABLE alerts (
	id             TEXT    PRIMARY KEY,
	scenario       TEXT    NOT NULL,
	key            TEXT    NOT NULL,
	count          INTEGER NOT NULL,
	distinct_count INTEGER NOT NULL,
	first_ns       INTEGER NOT NULL,
	last_ns        INTEGER NOT NULL,
	evidence       TEXT    NOT NULL, -- JSON array of event ids
	decisions      TEXT    NOT NULL, -- JSON array of AlertDecision
	simulated      INTEGER NOT NULL,
	created_ns     INTEGER NOT NULL
);
CREATE INDEX alerts_created  ON alerts (created_ns, id);
CREATE INDEX alerts_scenario ON alerts (scenario, created_ns, id);

-- A decision made from an alert names it and its evidence; a simulated one
-- is recorded and shown, never enforced (it is no change on the watch).
ALTER TABLE decisions ADD COLUMN alert_id  TEXT    NOT NULL DEFAULT '';
ALTER TABLE decisions ADD COLUMN evidence  TEXT    NOT NULL DEFAULT '';
ALTER TABLE decisions ADD COLUMN simulated INTEGER NOT NULL DEFAULT 0;
