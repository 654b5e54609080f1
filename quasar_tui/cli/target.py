"""Where a command writes a file safely: beside its final name and renamed into place, so an
interrupted write never leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from quasar_tui.core.errors import QuasarError


@contextlib.contextmanager
def target(path: Path | None, binary: bool) -> Iterator[Any]:
    """stdout; a regular file or new path written beside its name and renamed over it only on
    success; a device or FIFO written through (renaming over it would replace the node)."""
    if path is None:
        yield sys.stdout
        return
    kind = _kind(path)
    mode, newline = ("wb", None) if binary else ("w", "")
    if kind == "special":
        try:
            with open(path, mode, newline=newline) as handle:
                yield handle
        except OSError as exc:
            raise QuasarError(f"cannot write {path}: {exc.strerror or exc}") from None
        return
    try:
        fd, partial = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.")
    except OSError as exc:
        raise QuasarError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with open(fd, mode, newline=newline) as handle:
            yield handle
        os.chmod(partial, _final_mode(path, kind))
        os.replace(partial, path)
    except OSError as exc:
        raise QuasarError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        Path(partial).unlink(missing_ok=True)


def _kind(path: Path) -> str:
    """'new', 'regular' or 'special' (device, FIFO); a directory or symlink is refused."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return "new"
    except OSError as exc:
        raise QuasarError(f"cannot write {path}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(info.st_mode):
        raise QuasarError(f"{path} is a symbolic link: give the path it points to")
    if stat.S_ISDIR(info.st_mode):
        raise QuasarError(f"{path} is a directory: give a file name, e.g. {path}/bars.csv")
    return "regular" if stat.S_ISREG(info.st_mode) else "special"


def _final_mode(path: Path, kind: str) -> int:
    """An existing file keeps its permissions; a new one gets the usual 0666 less the umask."""
    if kind == "regular":
        return stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
