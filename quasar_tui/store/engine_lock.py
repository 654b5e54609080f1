"""Which advisory lock is the engine's, and the SQL that tells whether some session holds it.

Here, below the registry, because what a subscription's state means depends on it: a row the
engine marked `running` reads `stopped` when no engine runs (it stopped, or was killed).
"""

from __future__ import annotations

# Two-key advisory lock ("QSAR", 1): pg_locks shows it as classid/objid with objsubid 2.
LOCK_CLASS = 0x5153_4152
LOCK_OBJECT = 1

#: A boolean SQL expression, true while some session holds the engine lock.
ENGINE_HELD = f"""
    EXISTS (
        SELECT 1 FROM pg_locks
         WHERE locktype = 'advisory' AND granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND classid = {LOCK_CLASS}::oid AND objid = {LOCK_OBJECT}::oid AND objsubid = 2)
"""
