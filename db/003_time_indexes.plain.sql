-- Plain PostgreSQL: BRIN indexes on time for range scans over large bar and tick tables.
-- Tick retention is done by the engine's housekeeping job (DELETE older than 30 days).

CREATE INDEX historical_data_ts_brin ON historical_data USING brin (ts);
CREATE INDEX live_data_ts_brin ON live_data USING brin (ts);
CREATE INDEX live_ticks_ts_brin ON live_ticks USING brin (ts);
