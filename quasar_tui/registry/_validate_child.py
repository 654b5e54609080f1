"""The validator's child process: run one provider file in the provider sandbox and report on it.

Run as `python -m quasar_tui.registry._validate_child SOURCE REPORT --filename F
--memory-mib N --cpu-seconds N`. The report is JSON written to the REPORT file, never to
stdout, so nothing the provider prints can pass for it: `{"ok": true, "name": ..., "kind": ...,
"class_name": ..., "capabilities": {...}}` or `{"ok": false, "error": "one line"}`.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from pathlib import Path
from typing import Any

from quasar_tui.sandbox import confine, guard, loader
from quasar_tui.sandbox.loader import InvalidProviderError


def _failure(reason: str) -> dict[str, Any]:
    return {"ok": False, "error": reason}


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


def leftovers() -> str | None:
    """Threads still running after import, as one refusal line (None when there are none).

    The kernel's count also sees threads started behind Python's back (ctypes, C extensions).
    """
    names = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    count = max(len(names), _native_threads() - 1)
    if count <= 0:
        return None
    named = f" ({', '.join(names[:3])})" if names else ""
    return (
        f"left {count} thread{'s' if count > 1 else ''} running after import{named}: "
        "start threads in methods, not at module level"
    )


def _native_threads() -> int:
    try:
        return len(os.listdir(f"/proc/{os.getpid()}/task"))
    except OSError:
        return 1


def main(argv: list[str] | None = None) -> None:
    """Confine this process, validate, write the report, and leave at once.

    The confinement is the provider host's (Landlock, seccomp, limits) with no network, plus an
    audit hook that names what was refused. `os._exit` skips interpreter shutdown, so threads
    or atexit hooks the provider left behind can neither hang the child nor run after the report.
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
    private = Path.cwd()
    policy = confine.Policy(
        private=private,
        network=False,
        memory_mib=args.memory_mib,
        cpu_seconds=args.cpu_seconds,
    )
    confine.apply(policy)
    audit = guard.Guard(confine.read_roots(), confine.list_only(), private)
    audit.install()
    try:
        report = validate(data, args.filename)
        refusal = audit.violation or leftovers()
        if refusal is not None:
            report = _failure(refusal)
        payload = json.dumps(report, allow_nan=False).encode()
    except MemoryError:
        payload = out_of_memory
    os.write(fd, payload)
    os.close(fd)
    os._exit(0)


if __name__ == "__main__":
    main()
