-- Every write to a bar table marks the span it touched dirty, in the writer's transaction.
-- One statement trigger per event: a transition table belongs to one event only. TimescaleDB
-- takes them on hypertables from 2.18 on (checked by reading only: it could not be installed
-- where this was written).
CREATE TRIGGER historical_rollups_insert AFTER INSERT ON historical_data
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION quasar_rollups_dirty();
CREATE TRIGGER historical_rollups_update AFTER UPDATE ON historical_data
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION quasar_rollups_dirty();
CREATE TRIGGER live_rollups_insert AFTER INSERT ON live_data
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION quasar_rollups_dirty();
CREATE TRIGGER live_rollups_update AFTER UPDATE ON live_data
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION quasar_rollups_dirty();
