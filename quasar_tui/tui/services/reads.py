"""What a console's database read can raise."""

from __future__ import annotations

import asyncpg

from quasar_tui.core.errors import QuasarError

READ_ERRORS = (QuasarError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
"""What a screen's database read can raise that must become a message, not a crash."""
