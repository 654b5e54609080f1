-- Rollups: 1h and 1d bars derived from a finer stored interval (`base`), kept so that reading
-- a year of 1min data as 1h or 1d reads 8,760 or 365 rows instead of 525,600. They hold the
-- merged bars (live wins over historical at a timestamp), exactly as the read layer derives
-- them; a rollup is only trusted outside the series' dirty range below.
CREATE TABLE bar_rollups (
    provider text NOT NULL,
    symbol   text NOT NULL,
    base     text NOT NULL,
    interval text NOT NULL,
    ts       timestamptz NOT NULL,
    open     float8 NOT NULL,
    high     float8 NOT NULL,
    low      float8 NOT NULL,
    close    float8 NOT NULL,
    volume   float8 NOT NULL,
    trades   bigint,
    PRIMARY KEY (provider, symbol, base, interval, ts)
);

-- The span of source bar starts written since a series' rollups were last brought up to date
-- (one row per stored series, widened by each write; `version` tells a reader that refreshed
-- an older span that more was written meanwhile). The reader refreshes the span and deletes
-- the row before it reads rollups.
CREATE TABLE rollup_dirty (
    provider text NOT NULL,
    symbol   text NOT NULL,
    interval text NOT NULL,
    low      timestamptz NOT NULL,
    high     timestamptz NOT NULL,
    version  bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (provider, symbol, interval)
);

-- Called by statement triggers whose transition table is named `changed`.
CREATE FUNCTION quasar_rollups_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty AS d (provider, symbol, interval, low, high)
    SELECT provider, symbol, interval, min(ts), max(ts) FROM changed GROUP BY 1, 2, 3
    ON CONFLICT (provider, symbol, interval) DO UPDATE
       SET low = least(d.low, excluded.low), high = greatest(d.high, excluded.high),
           version = d.version + 1;
    RETURN NULL;
END $$;

-- Bars stored before rollups existed: every series is dirty over all it holds.
INSERT INTO rollup_dirty (provider, symbol, interval, low, high)
SELECT provider, symbol, interval, min(ts), max(ts)
  FROM (SELECT provider, symbol, interval, ts FROM historical_data
        UNION ALL
        SELECT provider, symbol, interval, ts FROM live_data) AS bars
 GROUP BY 1, 2, 3;
