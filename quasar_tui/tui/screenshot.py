"""Screenshots: an SVG of the screen, saved where the user can find it, and a toast saying where.

Textual saves to the Downloads folder, which servers rarely have, and then only says that it
failed. Here: Downloads when it exists, else the current directory; the toast names the file,
or says why nothing was saved. The file is the user's alone (a screen shows their data).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from platformdirs import user_downloads_path

from quasar_tui.core.messages import one_line


@dataclass(frozen=True)
class Saved:
    """Where the screenshot went, or why it went nowhere (`path` None)."""

    path: Path | None
    problem: str = ""


def screenshot_dirs() -> list[Path]:
    """Where to try, in order: the Downloads folder if it exists, then the current directory."""
    downloads = user_downloads_path()
    dirs = [downloads] if downloads.is_dir() else []
    try:
        cwd = Path.cwd()
    except FileNotFoundError:  # removed since quasar started in it: `save_svg` says so
        return dirs
    return [*dirs, cwd]


def default_name(now: datetime) -> str:
    """`quasar-2026-12-02T14-48-28.svg`: sorts by time, and no character a shell minds."""
    return f"quasar-{now:%Y-%m-%dT%H-%M-%S}.svg"


def save_svg(svg: str, filename: str, into: Path | None = None) -> Saved:
    """Write `svg` as `filename` in `into`, else in the first of `screenshot_dirs()` that
    takes it; never over an existing file."""
    problems = []
    for folder in [into] if into else screenshot_dirs():
        path = folder / filename
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(fd, "w", encoding="utf-8") as file:
                file.write(svg)
        except OSError as exc:
            problems.append(f"{folder}: {exc.strerror or one_line(exc)}")
            continue
        return Saved(path)
    if not problems:
        return Saved(None, "no Downloads folder and no current directory to save it in")
    return Saved(None, "; ".join(problems))
