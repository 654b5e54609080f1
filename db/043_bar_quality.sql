-- Quality flags of stored bars, found by a pass over stored data (never on the COPY path).
-- Only flagged bars have a row; bars are never changed or deleted for their flags.
-- flags: 1 OHLC inconsistent, 2 non-positive price, 4 spike, 8 zero volume in a session,
-- 16 repeated identical bar (a stale feed), 32 time off the interval's grid.
CREATE TABLE bar_flags (
    provider text NOT NULL,
    symbol   text NOT NULL,
    interval text NOT NULL,
    ts       timestamptz NOT NULL,
    flags    smallint NOT NULL CHECK (flags > 0),
    PRIMARY KEY (provider, symbol, interval, ts)
);

-- How far each series has been checked, so a pass only reads what is new (plus the look-back
-- its spike test needs).
CREATE TABLE quality_checks (
    provider   text NOT NULL,
    symbol     text NOT NULL,
    interval   text NOT NULL,
    checked_to timestamptz NOT NULL,
    checked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, symbol, interval)
);
