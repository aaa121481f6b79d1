-- Detection (package control runs package detect over the events).
--
-- seq numbers events in the order they were committed: an appender bumps
-- event_seq in the statement that inserts, and holds its row lock until
-- commit, so a reader that has seen seq n never sees a smaller one later.
-- The detection leader reads the events after its cursor in that order.
-- Events stored before have no seq: detection never reads them.
CREATE TABLE event_seq (
	id    integer PRIMARY KEY CHECK (id = 1),
	value bigint  NOT NULL
);
INSERT INTO event_seq (id, value) VALUES (1, 0);
ALTER TABLE events ADD COLUMN seq bigint;
CREATE UNIQUE INDEX events_seq ON events (seq);

-- Where a reader of the event log is: the last seq it has processed.
CREATE TABLE cursors (
	name       text   PRIMARY KEY,
	seq        bigint NOT NULL,
	updated_ns bigint NOT NULL
);

-- Alerts the detection engine raised. The id is derived from the alert
-- (scenario, key, first evidence event), so that a leader that takes over
-- and processes again the events of an alert already stored stores nothing.
CREATE TABLE alerts (
	id             text    PRIMARY KEY,
	scenario       text    NOT NULL,
	key            text    NOT NULL,
	count          bigint  NOT NULL,
	distinct_count bigint  NOT NULL,
	first_ns       bigint  NOT NULL,
	last_ns        bigint  NOT NULL,
	evidence       text    NOT NULL, -- JSON array of event ids
	decisions      text    NOT NULL, -- JSON array of AlertDecision
	simulated      boolean NOT NULL,
	created_ns     bigint  NOT NULL
);
CREATE INDEX alerts_created  ON alerts (created_ns, id);
CREATE INDEX alerts_scenario ON alerts (scenario, created_ns, id);

-- A decision made from an alert names it and its evidence; a simulated one
-- is recorded and shown, never enforced (it is no change on the watch).
ALTER TABLE decisions ADD COLUMN alert_id  text    NOT NULL DEFAULT '';
ALTER TABLE decisions ADD COLUMN evidence  text    NOT NULL DEFAULT '';
ALTER TABLE decisions ADD COLUMN simulated boolean NOT NULL DEFAULT false;
