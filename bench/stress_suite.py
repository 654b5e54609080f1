"""The test suite on a busy machine: one busy loop per core beside it, as a loaded CI runner.

    python -m bench.stress_suite [--quiet-runs N] [--loaded-runs N] [--loops N] [--ci]
                                 [-- PYTEST ARGS...]

Runs the README's test command (`pytest -q`, with any arguments given after `--`) first with
the machine as it is (`--quiet-runs`, default 1), then `--loaded-runs` times (default 3) with
`--loops` processes (default: one per core) spinning beside it; `--ci` runs `.ci/run` instead,
which also rebuilds the virtualenv. The busy loops are this script's own children and stop when
it ends, however it ends. It prints each run's wall time and pass counts, then, as the last
line, one JSON object of figures; it exits 1 when any run failed.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.common import report

ROOT = Path(__file__).resolve().parent.parent
_COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")
_SUMMARY = re.compile(r"^=*\s*\d+ (passed|failed|errors?)\b.* in [\d.]+s")


@dataclass(frozen=True)
class Run:
    """One run of the suite: how it was loaded, how long it took, what pytest counted."""

    loaded: bool
    exit_code: int
    wall_s: float
    counts: dict[str, int]
    summary: str
    failed: list[str]


@contextmanager
def busy_loops(n: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`n` processes that each keep a core busy until the block ends."""
    spin = [os.path.realpath(sys.executable), "-c", "while True: pass"]
    loops = [subprocess.Popen(spin) for _ in range(n)]
    try:
        yield loops
    finally:
        for loop in loops:
            loop.kill()
        for loop in loops:
            loop.wait()


def command(ci: bool, pytest_args: Sequence[str]) -> list[str]:
    if ci:
        return [str(ROOT / ".ci" / "run")]
    return [sys.executable, "-m", "pytest", "-q", *pytest_args]


def run_once(argv: list[str], loaded: bool) -> Run:
    """Run the suite, passing its output through, and read pytest's closing counts."""
    started = time.monotonic()
    lines: list[str] = []
    with subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            lines.append(line.rstrip("\n"))
        code = proc.wait()
    wall = time.monotonic() - started
    summary = next((line for line in reversed(lines) if _SUMMARY.search(line)), "")
    counts = {kind.rstrip("s"): int(n) for n, kind in _COUNTS.findall(summary)}
    failed = [line.split(" ", 1)[1] for line in lines if line.startswith(("FAILED ", "ERROR "))]
    return Run(loaded, code, round(wall, 1), counts, summary.strip("= "), failed)


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return models[0] if models else platform.processor() or "unknown"


def main(args: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quiet-runs", type=int, default=1, metavar="N")
    parser.add_argument("--loaded-runs", type=int, default=3, metavar="N")
    parser.add_argument("--loops", type=int, default=os.cpu_count() or 1, metavar="N")
    parser.add_argument("--ci", action="store_true", help="run .ci/run instead of pytest -q")
    parser.add_argument("pytest_args", nargs="*", help="given to pytest (after --)")
    options = parser.parse_args(args)
    argv = command(options.ci, options.pytest_args)
    runs: list[Run] = []
    for _ in range(options.quiet_runs):
        runs.append(run_once(argv, loaded=False))
        print(f"quiet run: {runs[-1].summary or 'no summary'} (exit {runs[-1].exit_code})")
    for _ in range(options.loaded_runs):
        with busy_loops(options.loops):
            runs.append(run_once(argv, loaded=True))
        print(f"loaded run: {runs[-1].summary or 'no summary'} (exit {runs[-1].exit_code})")
    report(
        {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": ".ci/run" if options.ci else " ".join(["pytest", *argv[3:]]),
            "busy_loops": options.loops,
            "cpu": cpu_model(),
            "quiet_wall_s": [r.wall_s for r in runs if not r.loaded],
            "loaded_wall_s": [r.wall_s for r in runs if r.loaded],
            "green": [r.exit_code == 0 for r in runs],
            "runs": [asdict(r) for r in runs],
        }
    )
    return 0 if all(r.exit_code == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
