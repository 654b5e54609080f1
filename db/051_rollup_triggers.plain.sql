-- Every write to a bar table marks the span it touched dirty, in the writer's transaction.
-- One statement trigger per event: a transition table belongs to one event only.
DO $$
DECLARE
    bars text;
    event text;
BEGIN
    FOREACH bars IN ARRAY ARRAY['historical_data', 'live_data'] LOOP
        FOREACH event IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
            EXECUTE format(
                'CREATE TRIGGER %I AFTER %s ON %I REFERENCING %s TABLE AS changed '
                'FOR EACH STATEMENT EXECUTE FUNCTION quasar_rollups_dirty()',
                split_part(bars, '_', 1) || '_rollups_' || event, upper(event), bars,
                CASE event WHEN 'delete' THEN 'OLD' ELSE 'NEW' END);
        END LOOP;
    END LOOP;
END $$;
