"""Validate a provider file in a child process, so its import cannot harm this one.

The child (`_validate_child`) runs under a memory limit (RLIMIT_AS) in its own session; the
whole session is killed after the wall-clock limit. It writes its report to a file in a private
temporary directory, so the provider's own prints cannot corrupt it. The child gets neither the
master key variable nor the DSN.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

import quasar_tui
from quasar_tui.core.errors import InvalidInputError
from quasar_tui.registry import _validate_child
from quasar_tui.registry.loader import InvalidProviderError, sha256_hex
from quasar_tui.registry.records import ValidationReport

TIMEOUT_SECONDS = 10.0
MEMORY_MIB = 1024
MAX_SOURCE_BYTES = 1024 * 1024
CHILD_MODULE = "quasar_tui.registry._validate_child"
_HIDDEN_ENV = ("QUASAR_SYSTEM_CONTEXT", "QUASAR_DSN")


def read_provider_file(path: Path) -> bytes:
    """The file's bytes, or one clear line saying why they cannot be used.

    Only a regular file is read, and never more than the cap: `/dev/zero` would fill memory,
    and a FIFO would block forever (it is opened without blocking to find out what it is).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        what = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise InvalidInputError(f"cannot read {path}: it is {what}; give a Python file")
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(MAX_SOURCE_BYTES + 1)
        except OSError as exc:
            raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_SOURCE_BYTES:
        raise InvalidProviderError("a provider file must be under 1 MiB", path.name)
    return data


async def validate_file(
    path: Path, *, time_limit: float = TIMEOUT_SECONDS, memory_mib: int = MEMORY_MIB
) -> ValidationReport:
    """Validate a provider file; raise InvalidProviderError with the reason if it fails."""
    data = read_provider_file(path)
    return await validate_source(data, path.name, time_limit=time_limit, memory_mib=memory_mib)


async def validate_source(
    data: bytes,
    filename: str,
    *,
    time_limit: float = TIMEOUT_SECONDS,
    memory_mib: int = MEMORY_MIB,
) -> ValidationReport:
    """Validate provider source bytes (as read from `filename`) in a child process."""
    with tempfile.TemporaryDirectory(prefix="quasar-validate-") as tmp:
        workdir = Path(tmp)
        report = await _run_child(data, filename, workdir, time_limit, memory_mib)
    return _to_report(report, data, filename)


def inspect_bundled(data: bytes, filename: str) -> ValidationReport:
    """The same checks in this process, for provider files that ship with Quasar.

    Bundled code is ours and trusted; skipping the child makes registering it cheap enough to
    happen on every start.
    """
    return _to_report(_validate_child.validate(data, filename), data, filename)


def _to_report(report: dict, data: bytes, filename: str) -> ValidationReport:
    if not report.get("ok"):
        raise InvalidProviderError(str(report.get("error")), filename)
    return ValidationReport(
        name=report["name"],
        kind=report["kind"],
        class_name=report["class_name"],
        sha256=sha256_hex(data),
        capabilities=report["capabilities"],
    )


async def _run_child(
    data: bytes, filename: str, workdir: Path, time_limit: float, memory_mib: int
) -> dict[str, Any]:
    source, report, errors = workdir / "provider-source", workdir / "report.json", workdir / "err"
    source.write_bytes(data)
    with errors.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            CHILD_MODULE,
            str(source),
            str(report),
            "--filename",
            filename,
            "--memory-mib",
            str(memory_mib),
            "--cpu-seconds",
            str(int(time_limit) + 5),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
            cwd=workdir,
            env=_child_env(),
            start_new_session=True,
        )
    try:
        await asyncio.wait_for(proc.wait(), time_limit)
    except TimeoutError:
        raise InvalidProviderError(
            f"took longer than {time_limit:g} s to import (infinite loop?)", filename
        ) from None
    finally:
        # Also kills whatever the provider started in the child's session.
        _kill_session(proc.pid)
        await proc.wait()
    return _read_report(report, errors, proc.returncode, filename)


def _read_report(report: Path, errors: Path, returncode: int | None, filename: str) -> dict:
    if returncode == 0 and report.exists():
        try:
            parsed = json.loads(report.read_bytes())
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and ("error" in parsed or "capabilities" in parsed):
            return parsed
    if returncode is not None and returncode < 0:
        how = f"killed by {_signal_name(-returncode)}"
    else:
        how = f"exit status {returncode} without a report; does the file call os._exit()?"
    last = _last_line(errors)
    raise InvalidProviderError(f"validator crashed ({how}){f': {last}' if last else ''}", filename)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_line(path: Path) -> str:
    """The child's last line on stderr (e.g. "Fatal Python error: ..."), shortened."""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 4096))
        tail = handle.read().decode("utf-8", "replace")
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _kill_session(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _HIDDEN_ENV}
    root = str(Path(quasar_tui.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env
