-- Name similarity for mapping suggestions and asset search, when pg_trgm is available.
-- requires: pg_trgm

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX assets_name_trgm ON assets USING gin (name gin_trgm_ops);
CREATE INDEX assets_symbol_trgm ON assets USING gin (symbol gin_trgm_ops);
