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


def _console_classes() -> Iterator[type[DOMNode]]:
    for cls in _subclasses(DOMNode):
        if cls.__module__.startswith(_PACKAGE) and issubclass(cls, DOMNode):
            yield cls


def conflicts(keymap: dict[str, str]) -> list[str]:
    """One sentence per binding whose key a keymap entry takes in the same place (the app, a
    mode, a list), the binding itself not being moved: it has no key any more (Textual drops
    it), and the user must hear which and how to give it one."""
    found: dict[str, str] = {}
    for cls in _console_classes():
        merged = cls._merged_bindings
        if merged is None:
            continue
        by_key = merged.key_to_bindings
        ids = {b.id for bs in by_key.values() for b in bs if b.id}
        taken = {k for i, keys in keymap.items() if i in ids for k in keys.split(",")}
        givers: dict[str, list[str]] = {}
        for binding_id, keys in keymap.items():
            if binding_id in ids:
                for key in keys.split(","):
                    givers.setdefault(key, []).append(binding_id)
        applied = merged.copy()
        applied.apply_keymap(keymap)
        for key, both in givers.items():
            runs = next((b.id for b in applied.key_to_bindings.get(key, ()) if b.id), both[0])
            idle = [i for i in both if i != runs]
            if len(both) > 1 and idle[0] not in found:
                found[idle[0]] = (
                    f"{key} is given to {' and '.join(both)}: only {runs} runs; "
                    f"give {', '.join(idle)} another key"
                )
        for taker, keys in keymap.items():
            if taker not in ids:
                continue
            for key in keys.split(","):
                for lost in by_key.get(key, ()):
                    name = lost.id or lost.action
                    if lost.id == taker or lost.id in keymap or name in found:
                        continue
                    left = [
                        k
                        for k, bs in by_key.items()
                        if k not in taken and any((b.id or b.action) == name for b in bs)
                    ]
                    found[name] = f"{key} now runs {taker}, so {name} ({lost.description}) " + (
                        f"keeps only {', '.join(left)}"
                        if left
                        else f'has no key: give it one, e.g. "{name}" = "f2"'
                    )
    return [found[name] for name in sorted(found)]


def keymap_warnings(keymap: dict[str, str], path: Path | None) -> list[tuple[str, float]]:
    """What the console says about a keymap once its bindings are known: unknown ids, then
    bindings a key was taken from; each with how long its toast stays."""
    warnings = []
    if unknown := unknown_ids(keymap):
        warnings.append(
            (f"{path}: no binding with id {', '.join(unknown)}; press ? to see the ids", 10.0)
        )
    warnings.extend((f"{path}: {clash}", 15.0) for clash in conflicts(keymap))
    return warnings
