-- Tell running engines and consoles that subscriptions or providers changed.

CREATE FUNCTION quasar_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('quasar_changes', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

-- Only edits a user makes: the engine's own state updates must not wake it again.
CREATE TRIGGER subscriptions_changed
    AFTER INSERT OR DELETE OR UPDATE OF enabled, interval, mode, lookback_days ON subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION quasar_notify_change();
CREATE TRIGGER providers_changed
    AFTER INSERT OR DELETE OR UPDATE OF enabled, preferences, secrets, sha256 ON providers
    FOR EACH STATEMENT EXECUTE FUNCTION quasar_notify_change();
