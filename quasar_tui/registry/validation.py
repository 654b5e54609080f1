"""Validate a provider file in a child process, so its import cannot harm this one.

The child (`_validate_child`) confines itself as a provider host does (quasar_tui.sandbox:
Landlock, seccomp, memory limit) and has no network; it runs in its own session with a
scrubbed environment in an empty private directory, and the whole session is killed after the
wall-clock limit. It writes its report to a file in that directory, so the provider's own
prints cannot corrupt it. A process still alive in the session after the child exits is
killed and the file refused.
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

import psutil

from quasar_tui.core.errors import InvalidInputError
from quasar_tui.registry import _validate_child
from quasar_tui.registry.records import ValidationReport
from quasar_tui.sandbox import confine
from quasar_tui.sandbox.loader import InvalidProviderError, sha256_hex

TIMEOUT_SECONDS = 10.0
MEMORY_MIB = 1024
MAX_SOURCE_BYTES = 1024 * 1024
CHILD_MODULE = "quasar_tui.registry._validate_child"


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
            "-P",
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
            env=confine.scrubbed_env(workdir),
            start_new_session=True,
        )
    try:
        await asyncio.wait_for(proc.wait(), time_limit)
    except TimeoutError:
        raise InvalidProviderError(
            f"took longer than {time_limit:g} s to import (a sleep or an endless loop?)",
            filename,
        ) from None
    finally:
        survivors = _session_members(proc.pid)
        # Also kills whatever the provider started in the child's session.
        _kill_session(proc.pid)
        await proc.wait()
    if survivors:
        raise InvalidProviderError(
            f"left {len(survivors)} process(es) running after import: "
            "a provider may not start processes",
            filename,
        )
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


def _session_members(sid: int) -> list[int]:
    """Processes of the child's session other than the child itself."""
    members = []
    for proc in psutil.process_iter():
        if proc.pid == sid:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError, psutil.Error):
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
    return members


def _kill_session(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
