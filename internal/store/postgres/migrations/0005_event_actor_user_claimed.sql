-- The service that named an event's user when the actor token it posted
-- backs the event's address and session but carries no user (the user
-- logged in at the service, which said so with SetUser): the actor is
-- verified, its user only claimed by that service. Empty when the user,
-- if any, is backed too. Events stored before have it empty.
ALTER TABLE events ADD COLUMN actor_user_claimed_by text NOT NULL DEFAULT '';
