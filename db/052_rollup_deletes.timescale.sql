-- No DELETE trigger: TimescaleDB builds no transition table when it drops a whole compressed
-- segment, and refuses such triggers on compressed hypertables. Quasar deletes bars only when a
-- provider is removed with its data, and then removes its rollups itself
-- (registry/providers.py). A bar deleted by hand leaves its rollups as they were until the
-- next write to that span.
SELECT 1;
