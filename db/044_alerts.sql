-- Alerts (`quasar alert ...`): rules the engine evaluates on what it collects, what each rule
-- last saw of each series (so a restart neither repeats nor forgets a crossing), and the
-- history of what fired and of every delivery attempt.
CREATE TABLE alert_rules (
    id             bigserial PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN
                       ('above', 'below', 'change', 'volume', 'stale', 'gap', 'provider',
                        'backfill')),
    -- A common symbol, PROVIDER:SYMBOL, a provider name (kind 'provider'), or NULL for all.
    target         text,
    level          float8,              -- above / below: the price
    percent        float8,              -- change: the move, in percent, either way
    window_s       integer,             -- change: within this many seconds
    factor         float8,              -- volume: times the recent average
    bars           integer,             -- volume: the average of this many bars before
    interval       text,                -- volume: bar interval
    stale_s        integer,             -- stale: no trade for this many seconds
    hysteresis     float8 NOT NULL DEFAULT 0 CHECK (hysteresis >= 0 AND hysteresis < 100),
    cooldown_s     integer NOT NULL DEFAULT 300 CHECK (cooldown_s >= 0),
    webhook_url    text,
    webhook_secret bytea,               -- AES-GCM under the master key, like provider secrets
    command        text,
    command_timeout_s integer NOT NULL DEFAULT 10 CHECK (command_timeout_s > 0),
    enabled        boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (kind NOT IN ('above', 'below') OR (level IS NOT NULL AND target IS NOT NULL)),
    CHECK (kind <> 'change' OR (percent > 0 AND window_s > 0)),
    CHECK (kind <> 'volume' OR (factor > 0 AND bars > 0 AND interval IS NOT NULL)),
    CHECK (kind <> 'stale' OR stale_s > 0),
    CHECK (webhook_secret IS NULL OR webhook_url IS NOT NULL)
);

-- Per rule and per series (or provider): which side of its level it was last seen on
-- ('above'/'below', 'bad'/'good'), when it last fired, and for gap rules the newest gap seen.
CREATE TABLE alert_state (
    rule_id    bigint NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    key        text NOT NULL,
    side       text,
    last_fired timestamptz,
    mark       bigint,
    PRIMARY KEY (rule_id, key)
);

CREATE TABLE alert_events (
    id       bigserial PRIMARY KEY,
    rule_id  bigint REFERENCES alert_rules (id) ON DELETE SET NULL,
    kind     text NOT NULL,
    key      text NOT NULL,
    message  text NOT NULL,
    body     jsonb NOT NULL,
    fired_at timestamptz NOT NULL
);
CREATE INDEX alert_events_fired ON alert_events (fired_at DESC);

CREATE TABLE alert_deliveries (
    id       bigserial PRIMARY KEY,
    event_id bigint NOT NULL REFERENCES alert_events (id) ON DELETE CASCADE,
    channel  text NOT NULL CHECK (channel IN ('log', 'console', 'webhook', 'command')),
    attempt  integer NOT NULL,
    ok       boolean NOT NULL,
    detail   text,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_deliveries_event ON alert_deliveries (event_id);

-- A running engine reloads its rules when a user adds, changes or removes one.
CREATE FUNCTION quasar_notify_alert_rules() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('quasar_alerts', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER alert_rules_changed
    AFTER INSERT OR DELETE OR UPDATE ON alert_rules
    FOR EACH STATEMENT EXECUTE FUNCTION quasar_notify_alert_rules();
