-- The calls an instance received from other services, as its agent
-- reports them: a JSON array of "CALLER METHOD /pattern" (the service
-- graph's observed edges, and the traffic a policy dry run replays).
-- Instances that reported before have none until their next heartbeat.
ALTER TABLE instances ADD COLUMN callers jsonb NOT NULL DEFAULT '[]';
