-- Which series a common symbol stands for changed (a mapping added, removed or renamed, a
-- priority order set): running engines re-resolve their alert rules on common symbols.
CREATE TRIGGER asset_mappings_changed
    AFTER INSERT OR DELETE OR UPDATE ON asset_mappings
    FOR EACH STATEMENT EXECUTE FUNCTION quasar_notify_change();
CREATE TRIGGER symbol_priority_changed
    AFTER INSERT OR DELETE OR UPDATE ON symbol_priority
    FOR EACH STATEMENT EXECUTE FUNCTION quasar_notify_change();
CREATE TRIGGER provider_priority_changed
    AFTER INSERT OR DELETE OR UPDATE ON provider_priority
    FOR EACH STATEMENT EXECUTE FUNCTION quasar_notify_change();
