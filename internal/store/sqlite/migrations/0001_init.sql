-- Times are Unix nanoseconds (INTEGER): exact round trips, and event
-- cursors that compare equal to what was stored.

-- One row: the revision of the latest change. Bumping it in the same
-- transaction as the change serializes writers, so revisions become visible
-- in order.
CREATE TABLE revision (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	value INTEGER NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 0);

CREATE TABLE changes (
	revision INTEGER PRIMARY KEY,
	kind     TEXT    NOT NULL,
	op       TEXT    NOT NULL,
	key      TEXT    NOT NULL,
	time_ns  INTEGER NOT NULL
);

CREATE TABLE events (
	id           TEXT    PRIMARY KEY,
	time_ns      INTEGER NOT NULL,
	kind         TEXT    NOT NULL,
	action       TEXT    NOT NULL,
	service      TEXT    NOT NULL,
	route        TEXT    NOT NULL,
	actor_ip     TEXT    NOT NULL,
	actor_user   TEXT    NOT NULL,
	session_hash TEXT    NOT NULL,
	trace_id     TEXT    NOT NULL,
	data         BLOB    NOT NULL
);
CREATE INDEX events_time       ON events (time_ns, id);
CREATE INDEX events_kind       ON events (kind, time_ns, id);
CREATE INDEX events_service    ON events (service, time_ns, id);
CREATE INDEX events_actor_ip   ON events (actor_ip, time_ns, id);
CREATE INDEX events_actor_user ON events (actor_user, time_ns, id);
CREATE INDEX events_trace      ON events (trace_id);

CREATE TABLE decisions (
	id         TEXT    PRIMARY KEY,
	scope      TEXT    NOT NULL,
	value      TEXT    NOT NULL,
	action     TEXT    NOT NULL,
	rate_limit INTEGER NOT NULL,
	reason     TEXT    NOT NULL,
	origin     TEXT    NOT NULL,
	created_ns INTEGER NOT NULL,
	expires_ns INTEGER,           -- NULL: never
	revision   INTEGER NOT NULL
);
CREATE INDEX decisions_expires ON decisions (expires_ns);

CREATE TABLE policies (
	version    INTEGER PRIMARY KEY,
	yaml       TEXT    NOT NULL,
	created_ns INTEGER NOT NULL,
	revision   INTEGER NOT NULL
);

CREATE TABLE trust_bundle (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	data       BLOB    NOT NULL,
	updated_ns INTEGER NOT NULL,
	revision   INTEGER NOT NULL
);

-- SHA-256 of the token's random bytes; the plaintext is never stored.
CREATE TABLE join_tokens (
	hash       BLOB    PRIMARY KEY,
	service    TEXT    NOT NULL,
	created_ns INTEGER NOT NULL,
	expires_ns INTEGER NOT NULL,
	used_ns    INTEGER            -- NULL: unused
);

CREATE TABLE services (
	name          TEXT    PRIMARY KEY,
	first_seen_ns INTEGER NOT NULL,
	revoked_ns    INTEGER           -- NULL: not revoked
);

CREATE TABLE instances (
	service       TEXT    NOT NULL REFERENCES services (name) ON DELETE CASCADE,
	id            TEXT    NOT NULL,
	version       TEXT    NOT NULL,
	go_version    TEXT    NOT NULL,
	modules       TEXT    NOT NULL, -- JSON array of {"path", "version"}
	routes        TEXT    NOT NULL, -- JSON array of strings
	peers         TEXT    NOT NULL,
	db_drivers    TEXT    NOT NULL,
	exposed       INTEGER NOT NULL,
	first_seen_ns INTEGER NOT NULL,
	last_seen_ns  INTEGER NOT NULL,
	PRIMARY KEY (service, id)
);
CREATE INDEX instances_last_seen ON instances (last_seen_ns);
