-- One row: the actor-token key set, encrypted by the control plane (the
-- store never sees the private keys in clear). version numbers the writes,
-- 1, 2, …: a writer replaces the row only if it still has the version it
-- read, so that of replicas rotating at once one wins.
CREATE TABLE actor_keys (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	data       BLOB    NOT NULL,
	version    INTEGER NOT NULL,
	updated_ns INTEGER NOT NULL,
	revision   INTEGER NOT NULL
);
