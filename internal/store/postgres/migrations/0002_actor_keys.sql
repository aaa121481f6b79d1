-- One row: the actor-token key set, encrypted by the control plane (the
-- store never sees the private keys in clear). version numbers the writes,
-- 1, 2, …: a writer replaces the row only if it still has the version it
-- read, so that of replicas rotating at once one wins.
CREATE TABLE actor_keys (
	id         integer PRIMARY KEY CHECK (id = 1),
	data       bytea   NOT NULL,
	version    bigint  NOT NULL,
	updated_ns bigint  NOT NULL,
	revision   bigint  NOT NULL
);
