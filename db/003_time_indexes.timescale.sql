-- TimescaleDB: hypertables for bars and ticks, compression of old bar chunks, tick retention.

CREATE EXTENSION IF NOT EXISTS timescaledb;

SELECT create_hypertable('historical_data', by_range('ts', INTERVAL '90 days'), migrate_data => true);
SELECT create_hypertable('live_data', by_range('ts', INTERVAL '7 days'), migrate_data => true);
SELECT create_hypertable('live_ticks', by_range('ts', INTERVAL '1 day'), migrate_data => true);

ALTER TABLE historical_data SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'provider, symbol, interval',
    timescaledb.compress_orderby = 'ts'
);
SELECT add_compression_policy('historical_data', INTERVAL '180 days');

ALTER TABLE live_data SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'provider, symbol, interval',
    timescaledb.compress_orderby = 'ts'
);
SELECT add_compression_policy('live_data', INTERVAL '30 days');

SELECT add_retention_policy('live_ticks', INTERVAL '30 days');
