-- Deleted bars mark their span dirty too, so a bucket whose bars are gone goes with them.
CREATE TRIGGER historical_rollups_delete AFTER DELETE ON historical_data
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION quasar_rollups_dirty();
CREATE TRIGGER live_rollups_delete AFTER DELETE ON live_data
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION quasar_rollups_dirty();
