"""User key remapping: every console binding has an id, and a TOML file maps ids to keys.

    # keymap.toml (in the data dir, or given with --keymap FILE)
    "mode.live" = "f6"
    "live.sort" = "o"
    "app.quit" = ["q", "ctrl+x"]

The help screen (`?`) lists each binding's id. Textual applies the map (`App.set_keymap`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

from textual.binding import Binding
from textual.dom import DOMNode

from quasar_tui.core.errors import InvalidInputError

KEYMAP_FILE = "keymap.toml"
_PACKAGE = "quasar_tui.tui"


class KeymapError(InvalidInputError):
    """The keymap file cannot be used as written."""


def find_keymap(option: str | None, data_dir: Path | None) -> Path | None:
    """`--keymap FILE` (which must exist), else `keymap.toml` in the data dir when present."""
    if option:
        path = Path(option).expanduser()
        if not path.is_file():
            raise KeymapError(f"keymap file {path} does not exist: give an existing TOML file")
        return path
    if data_dir is not None and (data_dir / KEYMAP_FILE).is_file():
        return data_dir / KEYMAP_FILE
    return None


def load_keymap(path: Path) -> dict[str, str]:
    """Binding id -> comma-separated keys, as `App.set_keymap` takes it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KeymapError(f"cannot read keymap file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise KeymapError(f"keymap file {path} is not valid TOML: {exc}") from None
    keymap: dict[str, str] = {}
    for binding_id, keys in data.items():
        if isinstance(keys, str):
            keys = [keys]
        if not (isinstance(keys, list) and keys and all(isinstance(k, str) and k for k in keys)):
            raise KeymapError(
                f'keymap file {path}: {binding_id!r} must be a key like "f6" or a list of '
                'keys like ["q", "ctrl+x"]'
            )
        keymap[binding_id] = ",".join(k.strip() for k in keys)
    return keymap


def _subclasses(cls: type[object]) -> Iterator[type[object]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def console_bindings() -> dict[str, Binding]:
    """Every binding with an id declared by a console class that has been imported."""
    found: dict[str, Binding] = {}
    for cls in _subclasses(DOMNode):
        if not cls.__module__.startswith(_PACKAGE):
            continue
        for binding in cls.__dict__.get("BINDINGS", ()):
            if isinstance(binding, Binding) and binding.id:
                found.setdefault(binding.id, binding)
    return found


def unknown_ids(keymap: dict[str, str]) -> list[str]:
    known = console_bindings()
    return sorted(binding_id for binding_id in keymap if binding_id not in known)
