"""Confinement a provider process applies to itself before any provider code runs.

Landlock (through ctypes) limits the file system to reading the Python installation, system
libraries, certificates and resolver files, and writing one private directory; with no network it
also refuses TCP connections. A seccomp filter refuses new processes (fork, exec; threads stay
allowed), sockets other than TCP/IP ones (no path to the database's unix socket), undoing the
parent-death signal, and a few escape hatches (ptrace, io_uring). Resource limits bound memory
and open files; the parent-death signal ends the process with its parent. Standard library
only: the registry's validator uses it.
"""

from __future__ import annotations

import ctypes
import errno
import importlib.util
import os
import resource
import signal
import site
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

PROCESS_ONLY = "process only"

_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1

_FS_EXECUTE = 1 << 0
_FS_WRITE_FILE = 1 << 1
_FS_READ_FILE = 1 << 2
_FS_READ_DIR = 1 << 3
_FS_TRUNCATE = 1 << 14
_FS_IOCTL_DEV = 1 << 15
_FILE_ONLY = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
_READ = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
_NET_BIND_TCP = 1 << 0
_NET_CONNECT_TCP = 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
_SCOPE_SIGNAL = 1 << 1

_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_AUDIT_ARCH_X86_64 = 0xC000003E
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_CLONE_THREAD = 0x00010000

# x86_64 system call numbers.
_NR_SOCKET, _NR_CLONE, _NR_PRCTL, _NR_CLONE3 = 41, 56, 157, 435
_REFUSED_CALLS = {
    57: errno.EPERM,  # fork
    58: errno.EPERM,  # vfork
    59: errno.EPERM,  # execve
    322: errno.EPERM,  # execveat
    _NR_CLONE3: errno.ENOSYS,  # glibc then falls back to clone, checked below
    101: errno.EPERM,  # ptrace
    310: errno.EPERM,  # process_vm_readv
    311: errno.EPERM,  # process_vm_writev
    425: errno.EPERM,  # io_uring_setup: would bypass the socket filter
    272: errno.EPERM,  # unshare
    308: errno.EPERM,  # setns
    321: errno.EPERM,  # bpf
    298: errno.EPERM,  # perf_event_open
}
_AF_INET, _AF_INET6, _AF_NETLINK = 2, 10, 16

_SYSTEM_READ = (
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/lib",
    "/lib64",
    "/etc/ssl",
    "/etc/pki",
    "/etc/ca-certificates",
    "/usr/share/ca-certificates",
    "/usr/share/zoneinfo",
    "/etc/localtime",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/host.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/mime.types",
    "/dev/urandom",
    "/dev/random",
)


@dataclass(frozen=True)
class Policy:
    """What the confined process may do: `private` is its only writable directory."""

    private: Path
    network: bool
    memory_mib: int = 1024
    open_files: int = 256
    cpu_seconds: int | None = None
    extra_read: tuple[Path, ...] = field(default_factory=tuple)


def _prefixes() -> list[Path]:
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return [Path(p).resolve() for p in paths if p]


def _package_dirs() -> list[Path]:
    """Quasar's own package directories (also when it runs from a source checkout, whose other
    files, a data dir among them perhaps, stay out of reach)."""
    dirs: list[Path] = []
    for name in ("quasar_tui", "quasar_tui.providers", "quasar_tui.db"):
        module = sys.modules.get(name)
        if module is None:
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                continue
            locations = list(spec.submodule_search_locations or []) if spec else []
        else:
            locations = list(getattr(module, "__path__", []))
        dirs += [Path(p) for p in locations]
    return dirs


def _unique_existing(candidates: list[Path]) -> list[Path]:
    roots: list[Path] = []
    for path in candidates:
        for variant in (path, path.resolve()):
            if variant.exists() and variant not in roots:
                roots.append(variant)
    return roots


TRUST_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")
"""The user's certificate trust (a TLS-inspecting proxy's CA, a private feed's): kept in a
confined process's environment and readable there, since providers verify what they reach."""


def trusted_certificates() -> list[Path]:
    return [Path(os.environ[name]) for name in TRUST_VARIABLES if os.environ.get(name)]


def read_roots(extra: tuple[Path, ...] = ()) -> list[Path]:
    """What the process may read: the Python installation (with its site-packages), Quasar's
    packages, system libraries, certificates and resolver files. Import path entries outside
    the installation are not included whole (see `list_only`)."""
    prefixes = _prefixes()
    candidates = [*prefixes, Path(sys.executable).resolve().parent]
    candidates += [Path(p) for p in site.getsitepackages()]
    candidates += [
        Path(p)
        for p in sys.path
        if p and any(Path(p).resolve().is_relative_to(pre) for pre in prefixes)
    ]
    candidates += _package_dirs()
    candidates += [Path(p) for p in _SYSTEM_READ]
    candidates += trusted_certificates()
    candidates += list(extra)
    return _unique_existing(candidates)


def list_only() -> list[Path]:
    """Directories whose entries may be listed but not read: the parents of Quasar's packages
    (the import system lists a path entry before it imports from it)."""
    return _unique_existing([p.parent for p in _package_dirs()])


def apply(policy: Policy) -> str:
    """Confine this process for good; return the isolation in effect, e.g. "landlock ABI 7".

    Call it before any thread exists: Landlock and seccomp bind the calling thread and the
    threads it starts afterwards.
    """
    _die_with_parent()
    _limits(policy)
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    abi = landlock_abi()
    if abi > 0:
        _landlock(policy, abi)
    _seccomp(policy.network)
    return f"landlock ABI {abi}" if abi > 0 else PROCESS_ONLY


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, arg: int, ptr: object = 0) -> None:
    libc = _libc()
    libc.prctl.argtypes = [
        ctypes.c_int,
        ctypes.c_ulong,
        ctypes.c_void_p,
        ctypes.c_ulong,
        ctypes.c_ulong,
    ]
    if libc.prctl(option, arg, ptr, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


def _die_with_parent() -> None:
    """SIGKILL when the parent goes; if it went already (we are init's), leave at once."""
    parent = os.getppid()
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent or parent == 1:
        os._exit(1)


def _limits(policy: Policy) -> None:
    mem = policy.memory_mib * 1024 * 1024
    pairs = [
        (resource.RLIMIT_AS, mem),
        (resource.RLIMIT_NOFILE, policy.open_files),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_FSIZE, 64 * 1024 * 1024),
    ]
    if policy.cpu_seconds is not None:
        pairs.append((resource.RLIMIT_CPU, policy.cpu_seconds))
    for kind, value in pairs:
        _, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(kind, (value, value))


def _syscall(*args: int | ctypes.c_void_p | object) -> int:
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(*args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is absent or disabled."""
    if sys.platform != "linux":
        return 0
    try:
        return _syscall(
            _SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), _LANDLOCK_CREATE_RULESET_VERSION
        )
    except OSError:
        return 0


def isolation() -> str:
    """What `apply` would give on this machine, for status lines."""
    abi = landlock_abi()
    return f"landlock ABI {abi}" if abi > 0 else PROCESS_ONLY


def _fs_mask(abi: int) -> int:
    mask = (1 << 13) - 1  # ABI 1: execute .. make_sym
    if abi >= 2:
        mask |= 1 << 13  # refer
    if abi >= 3:
        mask |= _FS_TRUNCATE
    if abi >= 5:
        mask |= _FS_IOCTL_DEV
    return mask


def _landlock(policy: Policy, abi: int) -> None:
    handled_fs = _fs_mask(abi)
    handled_net = 0
    if abi >= 4:
        handled_net = _NET_BIND_TCP | (0 if policy.network else _NET_CONNECT_TCP)
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0
    if abi >= 6:
        attr = struct.pack("=QQQ", handled_fs, handled_net, scoped)
    elif abi >= 4:
        attr = struct.pack("=QQ", handled_fs, handled_net)
    else:
        attr = struct.pack("=Q", handled_fs)
    buf = ctypes.create_string_buffer(attr, len(attr))
    ruleset = _syscall(_SYS_LANDLOCK_CREATE_RULESET, buf, ctypes.c_size_t(len(attr)), 0)
    try:
        for root in read_roots(policy.extra_read):
            _allow(ruleset, root, _READ & handled_fs)
        for directory in list_only():
            _allow(ruleset, directory, _FS_READ_DIR)
        _allow(ruleset, Path(f"/proc/{os.getpid()}"), _READ & handled_fs)
        _allow(ruleset, Path("/dev/null"), (_FS_READ_FILE | _FS_WRITE_FILE) & handled_fs)
        _allow(ruleset, policy.private, handled_fs)
        _syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0)
    finally:
        os.close(ruleset)


def _allow(ruleset: int, path: Path, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not os.path.isdir(path):
            access &= _FILE_ONLY
        attr = struct.pack("=Qi", access, fd)  # landlock_path_beneath_attr is packed
        buf = ctypes.create_string_buffer(attr, len(attr))
        _syscall(_SYS_LANDLOCK_ADD_RULE, ruleset, _LANDLOCK_RULE_PATH_BENEATH, buf, 0)
    finally:
        os.close(fd)


def _seccomp(network: bool) -> None:
    """Refuse new processes, foreign sockets and escape hatches; x86_64 only (elsewhere the
    process limits and Landlock remain)."""
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        return
    ld_abs, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06
    prog: list[tuple[int, int, int, int]] = [
        (ld_abs, 0, 0, 4),  # arch
        (jeq, 1, 0, _AUDIT_ARCH_X86_64),
        (ret, 0, 0, _RET_KILL_PROCESS),
        (ld_abs, 0, 0, 0),  # syscall number
        (0x35, 0, 1, 0x40000000),  # jge: x32 calls
        (ret, 0, 0, _RET_ERRNO | errno.ENOSYS),
    ]
    for nr, code in _REFUSED_CALLS.items():
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, _RET_ERRNO | code)]
    families = (_AF_INET, _AF_INET6, _AF_NETLINK) if network else ()
    k = len(families)
    prog.append((jeq, 0, k + 3, _NR_SOCKET))
    prog.append((ld_abs, 0, 0, 16))  # args[0]: the address family
    prog += [(jeq, k - i, 0, fam) for i, fam in enumerate(families)]
    prog += [(ret, 0, 0, _RET_ERRNO | errno.EACCES), (ret, 0, 0, _RET_ALLOW)]
    prog += [
        (jeq, 0, 4, _NR_PRCTL),
        (ld_abs, 0, 0, 16),  # the option: the parent-death signal stays as set
        (jeq, 0, 1, _PR_SET_PDEATHSIG),
        (ret, 0, 0, _RET_ERRNO | errno.EPERM),
        (ret, 0, 0, _RET_ALLOW),
    ]
    prog += [
        (jeq, 0, 4, _NR_CLONE),
        (ld_abs, 0, 0, 16),  # clone flags
        (jset, 0, 1, _CLONE_THREAD),
        (ret, 0, 0, _RET_ALLOW),
        (ret, 0, 0, _RET_ERRNO | errno.EPERM),
        (ret, 0, 0, _RET_ALLOW),
    ]
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in prog)
    filters = ctypes.create_string_buffer(raw, len(raw))

    class _Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = _Prog(len(prog), ctypes.addressof(filters))
    _prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(fprog))


def scrubbed_env(private: Path) -> dict[str, str]:
    """The whole environment of a confined process: nothing of its parent's (no DSN, no
    master key path), only what Python needs to find Quasar and the user's certificate trust."""
    root = str(Path(__file__).resolve().parents[2])
    trust = {name: os.environ[name] for name in TRUST_VARIABLES if os.environ.get(name)}
    return {
        **trust,
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(private),
        "TMPDIR": str(private),
        "PYTHONPATH": root,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
