"""Provider secrets at rest: AES-GCM with a key derived per provider and per code version.

The key for a provider is HKDF-SHA256 of the master key with `info` naming the provider and
the sha256 of its code; the same bytes are the AEAD's associated data. Secrets stored for one
provider's code therefore cannot be decrypted for another provider, nor for changed code that
might leak them.

The master key is `master.key` in the data dir (32 random bytes, created 0600 on first start and
never overwritten), or, when `QUASAR_SYSTEM_CONTEXT` is set, the contents of the file it names
(at least 32 bytes of key material, surrounding whitespace ignored), as in the original system.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from quasar_tui.core.errors import QuasarError

log = logging.getLogger("quasar.registry")

MASTER_KEY_FILE = "master.key"
ENV_VAR = "QUASAR_SYSTEM_CONTEXT"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_VERSION = b"\x01"
_LABEL = b"quasar provider secrets v1"


class SecretsMismatchError(QuasarError):
    """Stored secrets that do not decrypt for this provider name and code."""


class MasterKeyError(QuasarError):
    """The master key is missing, unreadable or too short."""


class Keyring:
    """Encrypts and decrypts provider secrets; holds the master key, never shows it."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) < _KEY_BYTES:
            raise MasterKeyError(f"the master key must be at least {_KEY_BYTES} bytes")
        self._master = master_key

    @classmethod
    def load_or_create(cls, data_dir: Path) -> Keyring:
        """The key named by QUASAR_SYSTEM_CONTEXT, else data_dir/master.key (made if missing)."""
        env_path = os.environ.get(ENV_VAR)
        if env_path:
            return cls(_read_env_key(Path(env_path).expanduser()))
        path = data_dir / MASTER_KEY_FILE
        if not path.exists():
            _create_key_file(path)
        return cls(_read_key_file(path))

    def encrypt(self, provider: str, sha256: str, values: dict[str, str]) -> bytes:
        """Blob layout: version byte, 12-byte nonce, AES-GCM ciphertext with tag."""
        binding = _binding(provider, sha256)
        nonce = os.urandom(_NONCE_BYTES)
        plain = json.dumps(values, sort_keys=True).encode("utf-8")
        return _VERSION + nonce + self._aead(binding).encrypt(nonce, plain, binding)

    def decrypt(self, provider: str, sha256: str, blob: bytes) -> dict[str, str]:
        binding = _binding(provider, sha256)
        version, nonce, body = blob[:1], blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        try:
            if version != _VERSION:
                raise InvalidTag
            plain = self._aead(binding).decrypt(nonce, body, binding)
        except InvalidTag:
            raise SecretsMismatchError(
                f"secrets of {provider} were stored for different code (or another master "
                f"key); set them again with `quasar provider secret {provider} ...`"
            ) from None
        values = json.loads(plain)
        return {str(k): str(v) for k, v in values.items()}

    def derive(self, purpose: bytes) -> bytes:
        """A key of its own for `purpose` (e.g. the API keys' pepper), independent of others."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=purpose)
        return hkdf.derive(self._master)

    def _aead(self, binding: bytes) -> AESGCM:
        return AESGCM(self.derive(binding))

    def __repr__(self) -> str:
        return "Keyring(<master key hidden>)"


def _binding(provider: str, sha256: str) -> bytes:
    return b"\x00".join((_LABEL, provider.encode("utf-8"), sha256.encode("ascii")))


def _create_key_file(path: Path) -> None:
    """Write a new key beside `path`, then hard-link it into place.

    The link fails if another process created the key first; theirs is kept. Nobody ever sees
    a half-written key file, and an existing key is never overwritten.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(_KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            log.debug("master key created concurrently by another process; using that one")
        finally:
            tmp.unlink()
    except OSError as exc:
        raise MasterKeyError(
            f"cannot create the master key {path}: {exc.strerror or exc}"
        ) from None
    log.info("created master key %s", path)


def _read_key_file(path: Path) -> bytes:
    try:
        key = path.read_bytes()
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise MasterKeyError(f"cannot read the master key {path}: {exc.strerror or exc}") from None
    if len(key) != _KEY_BYTES:
        raise MasterKeyError(
            f"the master key {path} is damaged ({len(key)} bytes, expected {_KEY_BYTES}); "
            "restore it from a backup (secrets cannot be decrypted without it)"
        )
    if mode & 0o077:
        log.warning("master key %s is readable by others (mode %o); run chmod 600", path, mode)
    return key


def _read_env_key(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise MasterKeyError(
            f"{ENV_VAR} names {path}, which cannot be read: {exc.strerror or exc}"
        ) from None
    if len(key) < _KEY_BYTES:
        raise MasterKeyError(
            f"{ENV_VAR} file {path} holds {len(key)} bytes; it needs at least {_KEY_BYTES} "
            "random bytes"
        )
    return key
