-- API keys of the HTTP API (`quasar apikey create`). Only a keyed hash of the secret is kept;
-- key_id is the public part of the key, used to find the row before comparing hashes.
CREATE TABLE api_keys (
    name       text PRIMARY KEY,
    key_id     text NOT NULL UNIQUE,
    digest     bytea NOT NULL,
    scopes     text[] NOT NULL,
    rate       integer NOT NULL CHECK (rate > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    last_used  timestamptz,
    uses       bigint NOT NULL DEFAULT 0
);

-- A running server drops its cached keys when one is created, changed or revoked.
CREATE FUNCTION quasar_notify_api_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('quasar_api_keys', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_keys_changed
    AFTER INSERT OR DELETE OR UPDATE OF digest, scopes, rate, expires_at ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION quasar_notify_api_keys();
