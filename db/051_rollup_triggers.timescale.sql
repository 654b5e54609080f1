-- Every write to a bar table marks the span it touched dirty, in the writer's transaction.
-- TimescaleDB takes statement triggers with transition tables on hypertables from 2.18 on;
-- before, a row trigger does the same work one row at a time. No DELETE trigger: TimescaleDB
-- builds no transition table when it drops a whole compressed segment. Quasar deletes bars
-- only when a provider is removed with its data, and then removes its rollups itself
-- (registry/providers.py). The row-trigger branch runs in the test suite on plain PostgreSQL;
-- the 2.18 branch is checked by reading only (TimescaleDB could not be installed there).

CREATE FUNCTION quasar_rollups_dirty_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty AS d (provider, symbol, interval, bars, low, high)
    VALUES (NEW.provider, NEW.symbol, NEW.interval, TG_TABLE_NAME, NEW.ts, NEW.ts)
    ON CONFLICT (provider, symbol, interval, bars) DO UPDATE
       SET low = least(d.low, excluded.low), high = greatest(d.high, excluded.high),
           version = d.version + 1;
    RETURN NULL;
END $$;

DO $$
DECLARE
    version int[] := (SELECT (regexp_match(extversion, '^(\d+)\.(\d+)'))::int[]
                        FROM pg_extension WHERE extname = 'timescaledb');
    bars text;
    event text;
BEGIN
    FOREACH bars IN ARRAY ARRAY['historical_data', 'live_data'] LOOP
        FOREACH event IN ARRAY ARRAY['insert', 'update'] LOOP
            IF version >= ARRAY[2, 18] THEN
                EXECUTE format(
                    'CREATE TRIGGER %I AFTER %s ON %I REFERENCING NEW TABLE AS changed '
                    'FOR EACH STATEMENT EXECUTE FUNCTION quasar_rollups_dirty()',
                    split_part(bars, '_', 1) || '_rollups_' || event, upper(event), bars);
            ELSE
                EXECUTE format(
                    'CREATE TRIGGER %I AFTER %s ON %I '
                    'FOR EACH ROW EXECUTE FUNCTION quasar_rollups_dirty_row()',
                    split_part(bars, '_', 1) || '_rollups_' || event, upper(event), bars);
            END IF;
        END LOOP;
    END LOOP;
END $$;
