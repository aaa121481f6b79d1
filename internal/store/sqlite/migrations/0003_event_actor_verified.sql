-- Whether an event's actor fields are backed by the actor token the
-- posting service received (verified by the control plane), or only
-- claimed by that service. Events stored before have neither: unverified.
ALTER TABLE events ADD COLUMN actor_verified   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN actor_claimed_by TEXT    NOT NULL DEFAULT '';
