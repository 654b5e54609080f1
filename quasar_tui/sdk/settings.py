"""The preference schema a provider declares in `CONFIGURABLE`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}


@dataclass(frozen=True)
class Setting:
    """One preference: its type, default and a line of help shown in forms and `--help`."""

    type: str = "str"
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"setting type must be one of {', '.join(_TYPES)}, not {self.type!r}")

    def coerce(self, key: str, value: Any) -> Any:
        """Turn user text (or JSON values) into the declared type, or raise ValueError."""
        want = _TYPES[self.type]
        if isinstance(value, str) and want is not str:
            value = _parse_text(key, value, want)
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ValueError(f"{key} must be {self.type}, got {value!r}")
        if self.choices and value not in self.choices:
            allowed = ", ".join(map(str, self.choices))
            raise ValueError(f"{key} must be one of {allowed}, got {value!r}")
        return value


def _parse_text(key: str, text: str, want: type) -> Any:
    if want is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{key} must be true or false, got {text!r}")
    try:
        return want(text.strip())
    except ValueError:
        raise ValueError(f"{key} must be {want.__name__}, got {text!r}") from None


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
