"""The preference schema a provider declares in `CONFIGURABLE`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quasar_tui.core.text import printable

_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}


_INT64 = 2**63 - 1
DEFAULT_MAX_LENGTH = 1024
"""Text preferences are URLs, symbol lists and codes: longer is a mistake (or an attack)."""


@dataclass(frozen=True)
class Setting:
    """One preference: its type, default, a line of help shown in forms and `--help`, and the
    bounds a value must keep (`min`/`max` for numbers, `max_length` for text) so that a typo
    is refused when set rather than failing at every run later."""

    type: str = "str"
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    max_length: int = DEFAULT_MAX_LENGTH

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"setting type must be one of {', '.join(_TYPES)}, not {self.type!r}")
        for bound in (self.min, self.max):
            if bound is not None and not math.isfinite(bound):
                raise ValueError("setting bounds must be finite numbers")

    def coerce(self, key: str, value: Any) -> Any:
        """Turn user text (or JSON values) into the declared type, or raise ValueError."""
        want = _TYPES[self.type]
        if isinstance(value, str) and want is not str:
            value = _parse_text(key, value, want)
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ValueError(f"{key} must be {self.type}, got {_short(value)}")
        if self.choices and value not in self.choices:
            allowed = ", ".join(map(str, self.choices))
            raise ValueError(f"{key} must be one of {allowed}, got {_short(value)}")
        self._check_bounds(key, value)
        return value

    def _check_bounds(self, key: str, value: Any) -> None:
        if isinstance(value, str):
            if printable(value) != value:
                raise ValueError(f"{key} must not contain control characters")
            if len(value) > self.max_length:
                raise ValueError(
                    f"{key} is {len(value)} characters long; at most {self.max_length} allowed"
                )
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            return
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{key} must be a finite number, got {value}")
        low = self.min if self.min is not None else (-_INT64 if self.type == "int" else None)
        high = self.max if self.max is not None else (_INT64 if self.type == "int" else None)
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"{key} must be {_range(low, high)}, got {_short(value)}")


def _range(low: float | None, high: float | None) -> str:
    if low is None:
        return f"at most {high:g}"
    if high is None:
        return f"at least {low:g}"
    return f"from {low:g} to {high:g}"


def _short(value: Any) -> str:
    """The value for an error line: repr, cut to 40 characters."""
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _parse_text(key: str, text: str, want: type) -> Any:
    if want is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{key} must be true or false, got {_short(text)}")
    try:
        return want(text.strip())
    except ValueError:
        raise ValueError(f"{key} must be {want.__name__}, got {_short(text)}") from None


def normalise_schema(raw: Mapping[str, Any]) -> dict[str, Setting]:
    """Accept `Setting` objects or plain dicts (`{"type": "str", "default": ...}`)."""
    schema: dict[str, Setting] = {}
    for key, spec in raw.items():
        if isinstance(spec, Setting):
            schema[key] = spec
        elif isinstance(spec, Mapping):
            choices = tuple(spec.get("choices", ()))
            schema[key] = Setting(
                type=spec.get("type", "str"),
                default=spec.get("default"),
                help=spec.get("help", ""),
                choices=choices,
                min=spec.get("min"),
                max=spec.get("max"),
                max_length=spec.get("max_length", DEFAULT_MAX_LENGTH),
            )
        elif isinstance(spec, type) and spec.__name__ in _TYPES:
            schema[key] = Setting(type=spec.__name__)
        else:
            raise ValueError(f"CONFIGURABLE[{key!r}] must be a Setting, a dict or a type")
    return schema


def validate_preferences(schema: Mapping[str, Setting], values: Mapping[str, Any]) -> dict:
    """Check keys and types against the schema; return the coerced values."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in schema:
            known = ", ".join(sorted(schema)) or "none"
            raise ValueError(f"unknown preference {key!r} (this provider accepts: {known})")
        out[key] = schema[key].coerce(key, value)
    return out
