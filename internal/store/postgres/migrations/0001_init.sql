-- Times are Unix nanoseconds (bigint), as in the SQLite store: exact round
-- trips, and event cursors that compare equal to what was stored.

-- One row: the revision of the latest change. A writer bumps it in the same
-- transaction as its change and holds the row lock until commit, so
-- revisions become visible in order on every replica.
CREATE TABLE revision (
	id    integer PRIMARY KEY CHECK (id = 1),
	value bigint  NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 0);

CREATE TABLE changes (
	revision bigint PRIMARY KEY,
	kind     text   NOT NULL,
	op       text   NOT NULL,
	key      text   NOT NULL,
	time_ns  bigint NOT NULL
);

-- Ids compare bytewise (COLLATE "C"), as in SQLite and Go, whatever the
-- database's collation: the (time_ns, id) order of cursors is the same.
CREATE TABLE events (
	id           text   COLLATE "C" PRIMARY KEY,
	time_ns      bigint NOT NULL,
	kind         text   NOT NULL,
	action       text   NOT NULL,
	service      text   NOT NULL,
	route        text   NOT NULL,
	actor_ip     text   NOT NULL,
	actor_user   text   NOT NULL,
	session_hash text   NOT NULL,
	trace_id     text   NOT NULL,
	data         bytea  NOT NULL -- the JSON as received, byte for byte
);
CREATE INDEX events_time       ON events (time_ns, id);
CREATE INDEX events_kind       ON events (kind, time_ns, id);
CREATE INDEX events_service    ON events (service, time_ns, id);
CREATE INDEX events_actor_ip   ON events (actor_ip, time_ns, id);
CREATE INDEX events_actor_user ON events (actor_user, time_ns, id);
CREATE INDEX events_trace      ON events (trace_id);

CREATE TABLE decisions (
	id         text    PRIMARY KEY,
	scope      text    NOT NULL,
	value      text    NOT NULL,
	action     text    NOT NULL,
	rate_limit integer NOT NULL,
	reason     text    NOT NULL,
	origin     text    NOT NULL,
	created_ns bigint  NOT NULL,
	expires_ns bigint,           -- NULL: never
	revision   bigint  NOT NULL
);
CREATE INDEX decisions_expires ON decisions (expires_ns);

CREATE TABLE policies (
	version    bigint PRIMARY KEY,
	yaml       text   NOT NULL,
	created_ns bigint NOT NULL,
	revision   bigint NOT NULL
);

CREATE TABLE trust_bundle (
	id         integer PRIMARY KEY CHECK (id = 1),
	data       bytea   NOT NULL,
	updated_ns bigint  NOT NULL,
	revision   bigint  NOT NULL
);

-- SHA-256 of the token's random bytes; the plaintext is never stored.
CREATE TABLE join_tokens (
	hash       bytea  PRIMARY KEY,
	service    text   NOT NULL,
	created_ns bigint NOT NULL,
	expires_ns bigint NOT NULL,
	used_ns    bigint            -- NULL: unused
);

CREATE TABLE services (
	name          text   PRIMARY KEY,
	first_seen_ns bigint NOT NULL,
	revoked_ns    bigint            -- NULL: not revoked
);

CREATE TABLE instances (
	service       text    NOT NULL REFERENCES services (name) ON DELETE CASCADE,
	id            text    NOT NULL,
	version       text    NOT NULL,
	go_version    text    NOT NULL,
	modules       jsonb   NOT NULL, -- array of {"path", "version"}
	routes        jsonb   NOT NULL, -- array of strings
	peers         jsonb   NOT NULL,
	db_drivers    jsonb   NOT NULL,
	exposed       boolean NOT NULL,
	first_seen_ns bigint  NOT NULL,
	last_seen_ns  bigint  NOT NULL,
	PRIMARY KEY (service, id)
);
CREATE INDEX instances_last_seen ON instances (last_seen_ns);
CREATE INDEX instances_modules   ON instances USING gin (modules jsonb_path_ops);
