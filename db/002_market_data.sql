-- Bars, ticks, collection runs and gaps. Bars are keyed by their start (UTC).

CREATE TABLE historical_data (
    provider text NOT NULL,
    symbol   text NOT NULL,
    interval text NOT NULL,
    ts       timestamptz NOT NULL,
    open     float8 NOT NULL,
    high     float8 NOT NULL,
    low      float8 NOT NULL,
    close    float8 NOT NULL,
    volume   float8 NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, symbol, interval, ts)
);

CREATE TABLE live_data (
    provider text NOT NULL,
    symbol   text NOT NULL,
    interval text NOT NULL,
    ts       timestamptz NOT NULL,
    open     float8 NOT NULL,
    high     float8 NOT NULL,
    low      float8 NOT NULL,
    close    float8 NOT NULL,
    volume   float8 NOT NULL DEFAULT 0,
    trades   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, symbol, interval, ts)
);

-- seq is the provider's trade id when it has one, else one the engine assigns.
CREATE TABLE live_ticks (
    provider text NOT NULL,
    symbol   text NOT NULL,
    ts       timestamptz NOT NULL,
    seq      bigint NOT NULL,
    price    float8 NOT NULL,
    size     float8 NOT NULL DEFAULT 0,
    side     text,
    PRIMARY KEY (provider, symbol, ts, seq)
);

CREATE TABLE collection_runs (
    id              bigserial PRIMARY KEY,
    subscription_id bigint REFERENCES subscriptions(id) ON DELETE SET NULL,
    provider        text NOT NULL,
    symbol          text NOT NULL,
    interval        text NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    rows_written    bigint NOT NULL DEFAULT 0,
    status          text NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'ok', 'partial', 'failed')),
    error           text
);
CREATE INDEX collection_runs_recent ON collection_runs (subscription_id, started_at DESC);

-- A span that should hold bars but does not yet: a failed chunk, or a hole found by the audit.
CREATE TABLE gaps (
    id              bigserial PRIMARY KEY,
    provider        text NOT NULL,
    symbol          text NOT NULL,
    interval        text NOT NULL,
    mode            text NOT NULL DEFAULT 'historical',
    start_ts        timestamptz NOT NULL,
    end_ts          timestamptz NOT NULL,
    reason          text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    found_at        timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    CHECK (end_ts > start_ts)
);
CREATE INDEX gaps_open ON gaps (provider, symbol, interval) WHERE resolved_at IS NULL;

-- What a running engine publishes for consoles in other processes.
CREATE TABLE engine_status (
    id          integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    owner       text NOT NULL,
    pid         integer NOT NULL,
    mode        text NOT NULL,
    started_at  timestamptz NOT NULL,
    heartbeat   timestamptz NOT NULL,
    stats       jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE live_quotes (
    provider   text NOT NULL,
    symbol     text NOT NULL,
    ts         timestamptz NOT NULL,
    last       float8,
    bid        float8,
    ask        float8,
    volume     float8,
    open       float8,
    ticks      bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, symbol)
);

CREATE TABLE engine_events (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    level   text NOT NULL,
    source  text NOT NULL,
    message text NOT NULL
);
