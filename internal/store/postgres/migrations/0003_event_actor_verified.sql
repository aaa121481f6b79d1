-- Whether an event's actor fields are backed by the actor token the
-- posting service received (verified by the control plane), or only
-- claimed by that service. Events stored before have neither: unverified.
ALTER TABLE events ADD COLUMN actor_verified   boolean NOT NULL DEFAULT false;
ALTER TABLE events ADD COLUMN actor_claimed_by text    NOT NULL DEFAULT '';
