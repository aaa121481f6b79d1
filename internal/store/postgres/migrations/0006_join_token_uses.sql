-- Join tokens that allow several joins (a replica set), listed and revoked
-- by an id that is not secret. A token made before keeps its single use,
-- and takes as id the first 8 bytes of the hash of its secret, in hex: the
-- hash is not secret either (it cannot be turned back into the token).
-- used_ns is now when the last use was spent (NULL while uses are left).
ALTER TABLE join_tokens ADD COLUMN id text NOT NULL DEFAULT '';
ALTER TABLE join_tokens ADD COLUMN uses integer NOT NULL DEFAULT 1;
ALTER TABLE join_tokens ADD COLUMN joins integer NOT NULL DEFAULT 0;
ALTER TABLE join_tokens ADD COLUMN last_used_ns bigint;
ALTER TABLE join_tokens ADD COLUMN revoked_ns bigint;
UPDATE join_tokens SET joins = 1, last_used_ns = used_ns WHERE used_ns IS NOT NULL;
UPDATE join_tokens SET id = encode(substring(hash from 1 for 8), 'hex');
CREATE UNIQUE INDEX join_tokens_id ON join_tokens (id);
CREATE INDEX join_tokens_created ON join_tokens (created_ns);
