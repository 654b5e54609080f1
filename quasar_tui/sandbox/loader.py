"""Provider source in, provider class out, with the checks every provider must pass.

The validator child runs these same functions on a new file, and `load_class` runs them again
in-process on stored code, so a provider that validated loads exactly the same way.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import linecache
import math
import re
import sys
import traceback
from dataclasses import dataclass
from types import CodeType, ModuleType
from typing import Any

from quasar_tui.core.errors import InvalidInputError, QuasarError
from quasar_tui.core.intervals import Interval
from quasar_tui.sdk.abilities import HistorySource
from quasar_tui.sdk.base import DataProvider, HistoricalDataProvider, LiveDataProvider
from quasar_tui.sdk.settings import Setting, normalise_schema

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
SECRET_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_BASES = "HistoricalDataProvider or LiveDataProvider"


class InvalidProviderError(InvalidInputError):
    """Provider code that cannot be registered or loaded.

    `reason` is the bare one-line cause (what the console shows next to the file); the message
    adds where it came from.
    """

    def __init__(self, reason: str, where: str | None = None) -> None:
        self.reason = reason
        self.where = where
        super().__init__(f"{where}: {reason}" if where else reason)


@dataclass(frozen=True)
class ProviderInfo:
    """The provider class of a module and what the registry records about it."""

    cls: type[DataProvider]
    name: str
    kind: str
    capabilities: dict[str, Any]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def module_name_for(sha256: str) -> str:
    """One module name per code version, so two versions never share a namespace."""
    return f"quasar_provider_{sha256[:16]}"


def compile_source(source: str, filename: str) -> CodeType:
    try:
        return compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise InvalidProviderError(f"syntax error at line {exc.lineno}: {exc.msg}") from None
    except ValueError as exc:  # e.g. NUL bytes in the source
        raise InvalidProviderError(f"syntax error: {exc}") from None


def run_module(code: CodeType, source: str, module_name: str) -> ModuleType:
    """Execute compiled provider code as a fresh module (registered in sys.modules).

    Its source goes into linecache so tracebacks from provider code show the lines. Whatever
    the code raises propagates; the module is unregistered again in that case.
    """
    module = ModuleType(module_name)
    linecache.cache[code.co_filename] = (
        len(source),
        None,
        source.splitlines(keepends=True),
        code.co_filename,
    )
    sys.modules[module_name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def explain_import_failure(exc: BaseException, filename: str) -> str:
    """One line for an exception raised while the provider module ran."""
    if isinstance(exc, SystemExit):
        return "called sys.exit() at import"
    if isinstance(exc, ImportError):
        return f"import failed: {exc}"
    if isinstance(exc, MemoryError):
        return "ran out of memory at import"
    line = next(
        (
            f.lineno
            for f in reversed(traceback.extract_tb(exc.__traceback__))
            if f.filename == filename
        ),
        None,
    )
    where = f" (line {line})" if line else ""
    return f"raised {type(exc).__name__} at import: {exc}{where}"


def find_provider_class(module: ModuleType) -> type[DataProvider]:
    """The one provider class defined in `module` (imported classes do not count)."""
    found: list[type[DataProvider]] = []
    for obj in vars(module).values():
        if (
            isinstance(obj, type)
            and issubclass(obj, DataProvider)
            and obj.__module__ == module.__name__
            and obj not in found
        ):
            found.append(obj)
    if not found:
        raise InvalidProviderError(f"no provider class found: define one subclass of {_BASES}")
    if len(found) > 1:
        names = ", ".join(c.__name__ for c in found)
        raise InvalidProviderError(
            f"{len(found)} provider classes ({names}): a file must define exactly one"
        )
    cls = found[0]
    historical = issubclass(cls, HistoricalDataProvider)
    live = issubclass(cls, LiveDataProvider)
    if historical and live:
        raise InvalidProviderError(
            f"{cls.__name__} subclasses both HistoricalDataProvider and LiveDataProvider: "
            "pick one (a live provider may also define get_history)"
        )
    if not historical and not live:
        raise InvalidProviderError(f"{cls.__name__} subclasses DataProvider directly: use {_BASES}")
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        raise InvalidProviderError(f"{cls.__name__} does not implement {', '.join(missing)}")
    _check_async(cls)
    return cls


_COROUTINES = ("fetch_available_symbols", "aclose")
_LIVE_COROUTINES = ("_connect", "_subscribe", "_unsubscribe", "_parse_message", "_heartbeat")
_GENERATORS = ("get_history", "get_history_many", "get_trades")


def _check_async(cls: type[DataProvider]) -> None:
    """Methods the engine awaits must be `async def`; the ones it iterates, async generators.

    A sync method would block every other provider while it runs, or fail at the first call.
    """
    live = issubclass(cls, LiveDataProvider)
    for name in (*_COROUTINES, *(_LIVE_COROUTINES if live else ())):
        method = getattr(cls, name, None)
        if method is not None and not inspect.iscoroutinefunction(method):
            raise InvalidProviderError(
                f"{cls.__name__}.{name} must be async: define it with `async def`"
            )
    for name in _GENERATORS:
        method = getattr(cls, name, None)
        if method is not None and not inspect.isasyncgenfunction(method):
            raise InvalidProviderError(
                f"{cls.__name__}.{name} must be an async generator: `async def` that yields "
                "records (not one that returns a list)"
            )


def describe_class(cls: type[DataProvider]) -> ProviderInfo:
    """Check the declared class attributes and turn them into the stored capabilities."""
    label = cls.__name__
    name = cls.name
    if not isinstance(name, str) or not name:
        raise InvalidProviderError(f'{label} has no name: set name = "..."')
    if not NAME_RE.match(name):
        raise InvalidProviderError(
            f"{label}.name {name!r} is not valid: use up to 64 letters, digits, '_' or '-', "
            "starting with a letter"
        )
    kind = "historical" if issubclass(cls, HistoricalDataProvider) else "live"
    capabilities = {
        "intervals": _intervals(cls),
        "has_history": kind == "historical" or issubclass(cls, HistorySource),
        "configurable": _schema_json(cls),
        "secrets": _secret_names(cls),
        "rate_limit": _rate_limit(cls),
        "concurrency": _concurrency(cls),
    }
    return ProviderInfo(cls, name, kind, capabilities)


def inspect_module(module: ModuleType) -> ProviderInfo:
    return describe_class(find_provider_class(module))


def check_sha256(source: str, sha256: str, *, provider: str) -> None:
    """Refuse stored code that is not the code that was validated."""
    if sha256_hex(source.encode("utf-8")) != sha256:
        raise QuasarError(
            f"the stored code of provider {provider} does not match its sha256; "
            f"add the file again with `quasar provider add FILE --replace`"
        )


def load_class(source: str, sha256: str, *, provider: str) -> ProviderInfo:
    """Run stored provider code in this process after checking it is the code validated."""
    check_sha256(source, sha256, provider=provider)
    filename = f"<quasar provider {provider}>"
    try:
        code = compile_source(source, filename)
        module = run_module(code, source, module_name_for(sha256))
    except InvalidProviderError as exc:
        raise InvalidProviderError(exc.reason, f"provider {provider}") from None
    except (Exception, SystemExit) as exc:
        reason = explain_import_failure(exc, filename)
        raise InvalidProviderError(reason, f"provider {provider} failed to load") from None
    try:
        info = inspect_module(module)
    except InvalidProviderError as exc:
        raise InvalidProviderError(exc.reason, f"provider {provider}") from None
    if info.name != provider:
        raise InvalidProviderError(
            f"its code now calls itself {info.name!r}; add the file again", f"provider {provider}"
        )
    return info


def _intervals(cls: type[DataProvider]) -> list[str]:
    try:
        values = [Interval.parse(str(i)).value for i in cls.INTERVALS]
    except (TypeError, ValueError) as exc:
        raise InvalidProviderError(f"{cls.__name__}.INTERVALS: {exc}") from None
    if not values:
        raise InvalidProviderError(f"{cls.__name__}.INTERVALS is empty: list the bar sizes served")
    return list(dict.fromkeys(values))


def _schema_json(cls: type[DataProvider]) -> dict[str, dict[str, Any]]:
    label = f"{cls.__name__}.CONFIGURABLE"
    try:
        schema = normalise_schema(cls.CONFIGURABLE)
        for key, setting in schema.items():
            if setting.default is not None:
                setting.coerce(key, setting.default)
        out = {key: _setting_json(setting) for key, setting in schema.items()}
        json.dumps(out, allow_nan=False)
    except (AttributeError, TypeError, ValueError) as exc:
        raise InvalidProviderError(f"{label} is invalid: {exc}") from None
    return out


def _setting_json(setting: Setting) -> dict[str, Any]:
    return {
        "type": setting.type,
        "default": setting.default,
        "help": setting.help,
        "choices": list(setting.choices),
        "min": setting.min,
        "max": setting.max,
        "max_length": setting.max_length,
    }


def _secret_names(cls: type[DataProvider]) -> list[str]:
    names = cls.SECRETS
    if isinstance(names, str) or not all(
        isinstance(n, str) and SECRET_KEY_RE.match(n) for n in names
    ):
        raise InvalidProviderError(
            f'{cls.__name__}.SECRETS must be a tuple of key names, e.g. ("api_token",)'
        )
    return sorted(set(names))


def _rate_limit(cls: type[DataProvider]) -> list[float]:
    value = cls.RATE_LIMIT
    ok = (
        isinstance(value, tuple | list)
        and len(value) == 2
        and isinstance(value[0], int)
        and not isinstance(value[0], bool)
        and value[0] > 0
        and isinstance(value[1], int | float)
        and not isinstance(value[1], bool)
        and math.isfinite(value[1])
        and value[1] > 0
    )
    if not ok:
        raise InvalidProviderError(
            f"{cls.__name__}.RATE_LIMIT must be (calls, seconds) with both above 0, got {value!r}"
        )
    return [value[0], value[1]]


def _concurrency(cls: type[DataProvider]) -> int:
    value = cls.CONCURRENCY
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidProviderError(f"{cls.__name__}.CONCURRENCY must be an int of at least 1")
    return value
