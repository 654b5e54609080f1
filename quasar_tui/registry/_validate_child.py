"""The validator's child process: run one provider file under limits and report on it.

Run as `python -m quasar_tui.registry._validate_child SOURCE REPORT --filename F
--memory-mib N --cpu-seconds N`. The report is JSON written to the REPORT file, never to
stdout, so nothing the provider prints can pass for it: `{"ok": true, "name": ..., "kind": ...,
"class_name": ..., "capabilities": {...}}` or `{"ok": false, "error": "one line"}`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from pathlib import Path
from typing import Any

from quasar_tui.registry import loader
from quasar_tui.registry.loader import InvalidProviderError

_MAX_FILE_BYTES = 64 * 1024 * 1024  # bounds what the provider's output can fill on disk


def _failure(reason: str) -> dict[str, Any]:
    return {"ok": False, "error": reason}


def _limit(kind: int, value: int) -> None:
    """Lower one resource limit for good (a limit already lower stays).

    Platforms that refuse one (macOS for RLIMIT_AS) keep theirs; the note goes to stderr,
    which the parent quotes only if the child crashes.
    """
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    try:
        resource.setrlimit(kind, (value, value))
    except (ValueError, OSError) as exc:
        print(f"quasar validator: resource limit {kind} not set: {exc}", file=sys.stderr)


def validate(data: bytes, filename: str) -> dict[str, Any]:
    """Check the file as the registry would. A MemoryError is left to the caller."""
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _failure(f"file is not UTF-8 text (invalid byte at offset {exc.start})")
    try:
        code = loader.compile_source(source, filename)
    except InvalidProviderError as exc:
        return _failure(exc.reason)
    sha = loader.sha256_hex(data)
    try:
        module = loader.run_module(code, source, loader.module_name_for(sha))
    except MemoryError:
        raise
    except BaseException as exc:
        return _failure(loader.explain_import_failure(exc, filename))
    try:
        info = loader.inspect_module(module)
    except InvalidProviderError as exc:
        return _failure(exc.reason)
    except MemoryError:
        raise
    except BaseException as exc:
        return _failure(f"raised {type(exc).__name__} while the class was read: {exc}")
    return {
        "ok": True,
        "name": info.name,
        "kind": info.kind,
        "class_name": info.cls.__name__,
        "capabilities": info.capabilities,
    }


def main(argv: list[str] | None = None) -> None:
    """Validate, write the report, and leave at once.

    `os._exit` skips interpreter shutdown, so threads or atexit hooks the provider left behind
    can neither hang the child nor run after the report.
    """
    parser = argparse.ArgumentParser(prog="quasar-validate-child")
    parser.add_argument("source", type=Path)
    parser.add_argument("report", type=Path)
    parser.add_argument("--filename", required=True)
    parser.add_argument("--memory-mib", type=int, required=True)
    parser.add_argument("--cpu-seconds", type=int, required=True)
    args = parser.parse_args(argv)

    data = args.source.read_bytes()
    fd = os.open(args.report, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # Built before the provider runs: when it exhausts memory there may be none left to build it.
    out_of_memory = json.dumps(
        _failure(f"used more than {args.memory_mib} MiB of memory at import")
    ).encode()
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_FSIZE, _MAX_FILE_BYTES)
    _limit(resource.RLIMIT_CPU, args.cpu_seconds)
    _limit(resource.RLIMIT_AS, args.memory_mib * 1024 * 1024)
    try:
        payload = json.dumps(validate(data, args.filename), allow_nan=False).encode()
    except MemoryError:
        payload = out_of_memory
    os.write(fd, payload)
    os.close(fd)
    os._exit(0)


if __name__ == "__main__":
    main()
