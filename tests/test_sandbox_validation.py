"""Validation runs the file in the provider sandbox with no network: each hostile file is
refused within 20 s with one line, and nothing it started is left running."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psutil
import pytest

from quasar_tui.registry.validation import validate_file
from quasar_tui.sandbox.loader import InvalidProviderError

FILES = Path(__file__).parent / "provider_files"
MARK = "quasar-hostile-grandchild"
SLOW_LIMIT = 3.0  # wall-clock limit for the files that hang; the default is 10 s

REFUSED = [
    ("sleep_at_import.py", "took longer than 3 s to import (a sleep or an endless loop?)"),
    ("infinite_loop.py", "took longer than 3 s to import (a sleep or an endless loop?)"),
    ("os_exit.py", "validator crashed (exit status 0 without a report"),
    ("fork_setsid.py", "started a process at import (os.fork())"),
    ("popen_new_session.py", "started a process at import (subprocess.Popen())"),
    ("fork_at_import.py", "started a process at import (os.fork())"),
    ("thread_left_alive.py", "left 1 thread running after import (poller)"),
    ("network_at_import.py", "attempted a network connection at import (socket.getaddrinfo"),
    ("sync_symbols.py", "SyncSymbols.fetch_available_symbols must be async"),
    ("sync_history.py", "ListHistory.get_history must be an async generator"),
    ("sync_trades.py", "Stream.get_trades must be an async generator"),
    ("sync_parse_message.py", "Stream._parse_message must be async"),
]


def _left_running(filename: str) -> list[psutil.Process]:
    """Live processes started for this file: validator children (their argv names the file)
    and the helpers the hostile files start (marked)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        ours = MARK in cmdline or ("--filename" in cmdline and filename in cmdline)
        if ours and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


async def _assert_nothing_left(filename: str) -> None:
    for _ in range(50):  # SIGKILL lands at once; only the process table may lag behind
        if not _left_running(filename):
            return
        await asyncio.sleep(0.1)
    assert _left_running(filename) == []


async def _refusal(path: Path) -> tuple[str, float]:
    began = time.monotonic()
    with pytest.raises(InvalidProviderError) as caught:
        await validate_file(path, time_limit=SLOW_LIMIT)
    return str(caught.value), time.monotonic() - began


@pytest.mark.parametrize(("filename", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
async def test_hostile_file_is_refused_in_one_line_leaving_nothing(
    filename: str, reason: str
) -> None:
    message, took = await _refusal(FILES / filename)
    assert message.startswith(f"{filename}: {reason}"), message
    assert "\n" not in message
    assert took < 20
    await _assert_nothing_left(filename)


@pytest.mark.parametrize("filename", ["read_master_key.py", "symlink_out.py"])
async def test_reading_the_master_key_at_import_is_refused(tmp_path: Path, filename: str) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    key = data_dir / "master.key"
    key.write_bytes(b"k" * 32)
    path = tmp_path / filename
    path.write_text((FILES / filename).read_text().replace("__DATA_DIR__", str(data_dir)))
    message, _ = await _refusal(path)
    # The file catches the PermissionError and carries on; the refusal names the attempt.
    assert message == f"{filename}: read {key} outside the sandbox at import"


async def test_a_well_behaved_file_still_validates() -> None:
    report = await validate_file(FILES / "good_historical.py")
    assert (report.name, report.kind) == ("synthetic", "historical")


def test_the_command_line_says_it_in_one_line(run_quasar) -> None:
    result = run_quasar("provider", "validate", str(FILES / "fork_setsid.py"))
    assert result.returncode == 1
    assert result.stderr == (
        "quasar: error: fork_setsid.py: started a process at import (os.fork())\n"
    )
    assert result.stdout == ""
