"""An audit hook that refuses, and remembers, what provider code may not do while it is validated:
start a process, touch the network, or read a file outside the sandbox.

Landlock and seccomp already make these fail; the hook names the attempt in one line even when
the code catches the error and carries on. Standard library only: the registry's validator uses it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_PROCESS = {
    "os.fork": "os.fork()",
    "os.forkpty": "os.forkpty()",
    "os.system": "os.system()",
    "os.posix_spawn": "os.posix_spawn()",
    "os.spawn": "os.spawn*()",
    "os.exec": "os.exec*()",
    "subprocess.Popen": "subprocess.Popen()",
}
_NETWORK = {
    "socket.connect",
    "socket.bind",
    "socket.sendto",
    "socket.sendmsg",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyaddr",
}
_PATHS = {"open", "os.listdir", "os.scandir"}


class Guard:
    """Install once with `install()`; `violation` is the first refused attempt, one line."""

    def __init__(self, readable: list[Path], listable: list[Path], writable: Path) -> None:
        self.roots = tuple(str(p).rstrip("/") + "/" for p in [*readable, writable])
        self.exact = {str(p) for p in [*readable, *listable, writable]} | {"/dev/null"}
        self.violation: str | None = None

    def install(self) -> None:
        sys.addaudithook(self._hook)

    def _refuse(self, what: str) -> None:
        if self.violation is None:
            self.violation = what
        raise PermissionError(f"not allowed in the provider sandbox: {what}")

    def _hook(self, event: str, args: tuple) -> None:
        if event in _PROCESS:
            self._refuse(f"started a process at import ({_PROCESS[event]})")
        elif event in _NETWORK:
            self._refuse(f"attempted a network connection at import ({_target(event, args)})")
        elif event in _PATHS and args and isinstance(args[0], str | bytes | os.PathLike):
            path = os.path.realpath(os.fsdecode(args[0]))  # a symlink counts where it leads
            if path not in self.exact and not path.startswith(self.roots):
                self._refuse(f"read {path} outside the sandbox at import")


def _target(event: str, args: tuple) -> str:
    """Where the attempt went, e.g. "example.com port 443" or "('10.0.0.1', 80)"."""
    if event == "socket.getaddrinfo" and len(args) >= 2:
        return f"{event} of {args[0]!s} port {args[1]!s}"
    if len(args) >= 2:
        return f"{event} to {args[1]!r}"
    return event
