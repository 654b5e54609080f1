"""Time from typing `quasar` to the first painted console screen, in a real pseudo-terminal.

Each run starts the real `quasar --data-dir DIR` command (the installed entry point) on a
140x45 pseudo-terminal that is its controlling terminal, reads everything it draws, and notes:
- `first_frame`: the first visible character drawn (whatever screen it belongs to);
- `console`: the console screen itself, the first time the Dashboard's header
  ("Quasar · Dashboard") has been drawn: database up and migrated, engine started, the mode
  screen composed and painted. This is the figure the targets are about.
Then it presses `q` and waits for the process (and its embedded PostgreSQL) to stop, so every
run starts the server again.

Cases:
- `new`: a data dir that does not exist yet: initdb, server start, every migration, the bundled
  providers validated and registered, master key created;
- `existing`: the data dir the last `new` run left, its server stopped (a console opened after
  a reboot, with no daemon running);
- `demo`: `quasar --demo`, a throw-away data dir seeded with the simulated market (a new user's
  first start).

`--baseline SRC` runs the source tree at SRC (a checkout of an earlier commit) alternately with
this one, run for run, and adds the ratios of the medians (this tree / SRC): on a busy machine
only such ratios mean anything.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import report

COLUMNS, ROWS = 140, 45
CONSOLE = "Quasar · Dashboard"
PAINT_TIMEOUT = 120.0
EXIT_TIMEOUT = 60.0
CASES = ("new", "existing", "demo")
_ESCAPES = re.compile(r"\x1b(\[[0-9;?<=>$]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


class StartupError(RuntimeError):
    """A run did not paint the console (or did not exit) in time."""


def quasar_command() -> list[str]:
    """The installed `quasar` entry point of this interpreter's environment."""
    script = Path(sys.executable).with_name("quasar")
    if script.exists():
        return [str(script)]
    found = shutil.which("quasar")
    return [found] if found else [sys.executable, "-m", "quasar_tui"]


def _become_terminal_session() -> None:
    """In the child: a new session whose controlling terminal is the pty on stdin."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@dataclass
class Screen:
    """What the console has written to the terminal, escape sequences removed."""

    text: str = ""
    _raw: bytes = b""

    def feed(self, data: bytes) -> None:
        self._raw += data
        decoded = self._raw.decode("utf-8", errors="ignore")
        self.text = _ESCAPES.sub("", decoded)


class Console:
    """One `quasar` process on its own pseudo-terminal."""

    def __init__(self, data_dir: Path | None, source: Path | None = None) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUASAR_")}
        env["TERM"] = "xterm-256color"
        where = ["--demo"] if data_dir is None else ["--data-dir", str(data_dir)]
        self.started = time.perf_counter()
        # A source tree runs as `python -m quasar_tui` from it (its own entry point; from its
        # directory, which `-m` puts first on the path, ahead of the installed tree).
        command = quasar_command() if source is None else [sys.executable, "-m", "quasar_tui"]
        self.proc = subprocess.Popen(
            [*command, *where],
            cwd=source,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            preexec_fn=_become_terminal_session,
        )
        os.close(slave)
        self.screen = Screen()

    def _read(self, timeout: float) -> bool:
        """Read what is there within `timeout`; False once the terminal has closed."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every process on the terminal has gone
            return False
        self.screen.feed(data)
        return bool(data)

    def wait_for(self, text: str | None) -> float:
        """Seconds from the start until `text` (None: anything visible) has been drawn."""
        deadline = self.started + PAINT_TIMEOUT
        while (text not in self.screen.text) if text else not self.screen.text.strip():
            if time.perf_counter() > deadline or not self._read(0.2):
                raise StartupError(
                    f"no {text or 'text'!r} on the screen; it shows:\n{self.screen.text[-2000:]}"
                )
        return time.perf_counter() - self.started

    def quit(self) -> None:
        """`q`, then wait for the process (its engine and server stop) while draining."""
        os.write(self.master, b"q")
        deadline = time.monotonic() + EXIT_TIMEOUT
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(30)
                raise StartupError("the console did not exit after q")
            self._read(0.1)
        os.close(self.master)
        if self.proc.returncode != 0:
            raise StartupError(
                f"the console exited with {self.proc.returncode}:\n{self.screen.text[-2000:]}"
            )


def server_stopped(data_dir: Path, timeout: float = 30.0) -> None:
    """Wait until the embedded PostgreSQL of `data_dir` has shut down."""
    pid_file = data_dir / "pg" / "postmaster.pid"
    deadline = time.monotonic() + timeout
    while pid_file.exists():
        if time.monotonic() > deadline:
            raise StartupError(f"the embedded server in {data_dir} is still running")
        time.sleep(0.1)


def one_run(data_dir: Path | None, source: Path | None = None) -> dict[str, float]:
    """One start to the Dashboard and quit; `data_dir` None is `--demo` (the process removes
    its own data dir, after its server has stopped)."""
    console = Console(data_dir, source)
    try:
        first = console.wait_for(None)
        ready = console.wait_for(CONSOLE)
    except StartupError:
        console.proc.kill()
        console.proc.wait()
        raise
    console.quit()
    if data_dir is not None:
        server_stopped(data_dir)
    return {"first_frame": first, "console": ready}


def summary(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        figure: {
            "median_s": round(statistics.median(r[figure] for r in runs), 3),
            "best_s": round(min(r[figure] for r in runs), 3),
        }
        for figure in ("first_frame", "console")
    }


def ratios(runs: list[dict[str, float]], base: list[dict[str, float]]) -> dict[str, float]:
    """Median of this tree over median of the baseline, per figure (below 1: faster)."""
    return {
        figure: round(
            statistics.median(r[figure] for r in runs) / statistics.median(r[figure] for r in base),
            3,
        )
        for figure in ("first_frame", "console")
    }


def run_case(case: str, root: Path, runs: int, baseline: Path | None) -> dict[str, Any]:
    """`runs` runs of one case, alternating with the baseline's when there is one."""
    mine: list[dict[str, float]] = []
    base: list[dict[str, float]] = []
    here = Path(__file__).resolve().parents[1] if baseline is not None else None
    for i in range(runs):
        for source, into, tag in ((baseline, base, "baseline"), (here, mine, "this tree")):
            if tag == "baseline" and baseline is None:
                continue
            if case == "demo":
                data_dir = None
            elif case == "new":
                data_dir = root / f"{tag.replace(' ', '-')}-new{i}"
            else:
                data_dir = root / f"{tag.replace(' ', '-')}-new{runs - 1}"
            into.append(one_run(data_dir, source))
            print(f"{case}, {tag}, run {i + 1}: {into[-1]}", flush=True)
    figures: dict[str, Any] = summary(mine)
    if baseline is not None:
        figures = {**figures, "baseline": summary(base), "ratio_to_baseline": ratios(mine, base)}
    return figures


def main(runs: int, cases: list[str], baseline: Path | None) -> None:
    load = round(os.getloadavg()[0], 2)
    root = Path(tempfile.mkdtemp(prefix="quasar-bench-startup-"))
    root.chmod(0o755)  # run as root, the server's own account must reach the data dirs in it
    try:
        results = {case: run_case(case, root, runs, baseline) for case in cases}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report(
        {
            "bench": "startup",
            "load_1m_at_start": load,
            "runs": runs,
            "terminal": f"{COLUMNS}x{ROWS}",
            **{f"{case}_data_dir" if case != "demo" else case: results[case] for case in cases},
            "targets": {"existing_data_dir_s": 1.5, "new_data_dir_s": 6.0},
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each case")
    parser.add_argument(
        "--case",
        choices=CASES,
        action="append",
        help="a case to run (repeat for several; default: new and existing)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="SRC",
        help="a source tree to run alternately with this one, for ratios",
    )
    parsed = parser.parse_args()
    main(parsed.runs, parsed.case or ["new", "existing"], parsed.baseline)
