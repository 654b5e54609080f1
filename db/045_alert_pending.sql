-- An alert is recorded, with the state that made it fire, before any delivery: `pending`
-- names the channels it has still to reach (one leaves the list when it got through or was
-- given up), so an engine killed before delivering delivers them when it starts again.
ALTER TABLE alert_events ADD COLUMN pending text[] NOT NULL DEFAULT '{}';
CREATE INDEX alert_events_pending ON alert_events (id) WHERE pending <> '{}';
