"""What the console remembers between runs (the chart's time axis, ...): `console.json` in the
data dir, private to its user, replaced whole on each change so it is never half-written.

A file that cannot be read or parsed is set aside for the defaults with one warning: a
remembered choice is never worth a console that will not start.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger("quasar.console")

STATE_FILE = "console.json"

Value = bool | int | float | str


class ConsoleState:
    """Remembered choices by name (`chart.local_time`); values are JSON scalars."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / STATE_FILE
        self._values = self._load()

    def _load(self) -> dict[str, Value]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s (%s): the console starts with its defaults", self.path, exc)
            return {}
        if not isinstance(data, dict):
            log.warning("ignoring %s: not a JSON object", self.path)
            return {}
        return {k: v for k, v in data.items() if isinstance(v, bool | int | float | str)}

    def flag(self, name: str, default: bool = False) -> bool:
        value = self._values.get(name, default)
        return value if isinstance(value, bool) else default

    def set(self, name: str, value: Value) -> None:
        """Remember `value`; a file that cannot be written costs one warning, not the choice
        made in this session."""
        self._values[name] = value
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self._values, f, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot remember %s in %s: %s", name, self.path, exc.strerror or exc)
