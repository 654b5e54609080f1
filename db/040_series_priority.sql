-- Which provider serves a common symbol first: per symbol (`quasar map priority BTC/USD KRAKEN
-- POLYGON`), then the global default order, then the provider's name.
CREATE TABLE provider_priority (
    provider text PRIMARY KEY,
    rank     integer NOT NULL
);

CREATE TABLE symbol_priority (
    common_symbol text NOT NULL REFERENCES common_symbols(symbol)
                  ON DELETE CASCADE ON UPDATE CASCADE,
    provider      text NOT NULL,
    rank          integer NOT NULL,
    PRIMARY KEY (common_symbol, provider)
);

-- Trade counts where the provider gives them; NULL where it does not (never a made-up 0).
ALTER TABLE historical_data ADD COLUMN trades integer;
ALTER TABLE live_data ALTER COLUMN trades DROP NOT NULL;
ALTER TABLE live_data ALTER COLUMN trades DROP DEFAULT;
