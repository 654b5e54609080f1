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

-- The span of source bar starts written to one bar table (`bars`) since a series' rollups
-- were last brought up to date: one row per stored series and table, widened by each write, so
-- the live and the historical writers never wait for each other here; `version` tells a reader
-- that refreshed an older span that more was written meanwhile. The reader refreshes the spans
-- and deletes the rows before it reads rollups.
CREATE TABLE rollup_dirty (
    provider text NOT NULL,
    symbol   text NOT NULL,
    interval text NOT NULL,
    bars     text NOT NULL,
    low      timestamptz NOT NULL,
    high     timestamptz NOT NULL,
    version  bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (provider, symbol, interval, bars)
);

-- Called by statement triggers whose transition table is named `changed`.
CREATE FUNCTION quasar_rollups_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty AS d (provider, symbol, interval, bars, low, high)
    SELECT provider, symbol, interval, TG_TABLE_NAME, min(ts), max(ts)
      FROM changed GROUP BY 1, 2, 3
    ON CONFLICT (provider, symbol, interval, bars) DO UPDATE
       SET low = least(d.low, excluded.low), high = greatest(d.high, excluded.high),
           version = d.version + 1;
    RETURN NULL;
END $$;

-- Bars stored before rollups existed: every series is dirty over all it holds.
INSERT INTO rollup_dirty (provider, symbol, interval, bars, low, high)
SELECT provider, symbol, interval, 'historical_data', min(ts), max(ts)
  FROM historical_data GROUP BY 1, 2, 3
UNION ALL
SELECT provider, symbol, interval, 'live_data', min(ts), max(ts)
  FROM live_data GROUP BY 1, 2, 3;
