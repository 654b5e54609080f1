-- Providers, assets, common symbols, mappings and subscriptions.

CREATE TABLE providers (
    name          text PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('historical', 'live')),
    class_name    text NOT NULL,
    source        text NOT NULL,
    sha256        text NOT NULL,
    preferences   jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- what validation found: intervals, has_history, the CONFIGURABLE schema, secret names
    capabilities  jsonb NOT NULL DEFAULT '{}'::jsonb,
    secrets       bytea,
    secret_names  text[] NOT NULL DEFAULT '{}',
    enabled       boolean NOT NULL DEFAULT true,
    status        text NOT NULL DEFAULT 'ok',
    status_detail text,
    bundled       boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE assets (
    provider     text NOT NULL REFERENCES providers(name) ON DELETE CASCADE ON UPDATE CASCADE,
    symbol       text NOT NULL,
    name         text,
    exchange     text,
    asset_class  text,
    base         text,
    quote        text,
    provider_id  text,
    figi         text,
    active       boolean NOT NULL DEFAULT true,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, symbol)
);
CREATE INDEX assets_figi ON assets (figi) WHERE figi IS NOT NULL;

CREATE TABLE common_symbols (
    symbol     text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One common symbol per provider symbol (the key); one provider symbol per common symbol
-- and provider (the unique constraint).
CREATE TABLE asset_mappings (
    provider      text NOT NULL,
    symbol        text NOT NULL,
    common_symbol text NOT NULL REFERENCES common_symbols(symbol)
                  ON DELETE CASCADE ON UPDATE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, symbol),
    CONSTRAINT asset_mappings_one_per_provider UNIQUE (provider, common_symbol),
    FOREIGN KEY (provider, symbol) REFERENCES assets(provider, symbol)
        ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE subscriptions (
    id            bigserial PRIMARY KEY,
    provider      text NOT NULL,
    symbol        text NOT NULL,
    interval      text NOT NULL
                  CHECK (interval IN ('1min','5min','15min','30min','1h','4h','1d','1w','1M')),
    mode          text NOT NULL CHECK (mode IN ('historical', 'live')),
    enabled       boolean NOT NULL DEFAULT true,
    lookback_days integer NOT NULL DEFAULT 365 CHECK (lookback_days > 0),
    state         text NOT NULL DEFAULT 'new',
    last_error    text,
    last_run_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, symbol, interval, mode),
    FOREIGN KEY (provider, symbol) REFERENCES assets(provider, symbol)
        ON DELETE CASCADE ON UPDATE CASCADE
);
