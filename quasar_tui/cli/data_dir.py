"""Refusing a data dir that belongs to another user before anything touches it.

Starting the embedded server there would fail half-way (files it cannot read) and leave the
server library's exit handler failing too; one line up front says what is wrong instead.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from quasar_tui.core.errors import QuasarError


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def check_owner(data_dir: Path) -> None:
    """Raise when `data_dir` (or its database directory) exists and another user owns it."""
    me = os.geteuid()
    if me == 0:
        return
    for path in (data_dir, data_dir / "pg"):
        try:
            owner = path.stat().st_uid
        except FileNotFoundError:
            return
        except OSError as exc:
            raise QuasarError(
                f"cannot use the data dir {data_dir}: {exc.strerror}; "
                "give one of your own with --data-dir"
            ) from None
        if owner != me:
            raise QuasarError(
                f"the data dir {data_dir} belongs to {_user(owner)}, not {_user(me)}: "
                "give one of your own with --data-dir (or run as its owner)"
            )
