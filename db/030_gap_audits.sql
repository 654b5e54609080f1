-- How a gap was closed, and when each series was last audited for interior holes.
-- A gap resolved as 'empty' was re-requested and the provider had nothing for it (a holiday,
-- a session break, history before a listing): the audit does not raise it again.

ALTER TABLE gaps ADD COLUMN resolution text CHECK (resolution IN ('filled', 'empty'));
CREATE INDEX gaps_series ON gaps (provider, symbol, interval, start_ts);

CREATE TABLE series_audits (
    provider   text NOT NULL,
    symbol     text NOT NULL,
    interval   text NOT NULL,
    audited_at timestamptz NOT NULL,
    PRIMARY KEY (provider, symbol, interval)
);
