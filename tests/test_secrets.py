"""Provider secrets: encrypted per provider and code version, never in the database in plain."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from quasar_tui.core.errors import InvalidInputError
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.secrets import (
    MASTER_KEY_FILE,
    Keyring,
    MasterKeyError,
    SecretsMismatchError,
)
from quasar_tui.store.database import Database

FILES = Path(__file__).parent / "provider_files"
SHA_A = "a" * 64
SHA_B = "b" * 64
TOKEN = "s3cr3t-T0ken-value-zq"
SECOND = "another-Secret-98765"


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUASAR_SYSTEM_CONTEXT", raising=False)


def test_round_trip(tmp_path: Path) -> None:
    keyring = Keyring.load_or_create(tmp_path)
    blob = keyring.encrypt("kraken", SHA_A, {"api_token": TOKEN, "user": "me"})
    assert TOKEN.encode() not in blob
    assert keyring.decrypt("kraken", SHA_A, blob) == {"api_token": TOKEN, "user": "me"}


@pytest.mark.parametrize(
    ("name", "sha"), [("polygon", SHA_A), ("kraken", SHA_B)], ids=["other-name", "other-code"]
)
def test_secrets_are_bound_to_name_and_code(tmp_path: Path, name: str, sha: str) -> None:
    keyring = Keyring.load_or_create(tmp_path)
    blob = keyring.encrypt("kraken", SHA_A, {"api_token": TOKEN})
    with pytest.raises(SecretsMismatchError) as caught:
        keyring.decrypt(name, sha, blob)
    assert str(caught.value).startswith(f"secrets of {name} were stored for different code")
    assert f"`quasar provider secret {name} ...`" in str(caught.value)


def test_another_master_key_or_a_damaged_blob_cannot_decrypt(tmp_path: Path) -> None:
    blob = Keyring.load_or_create(tmp_path / "one").encrypt("kraken", SHA_A, {"k": TOKEN})
    with pytest.raises(SecretsMismatchError):
        Keyring.load_or_create(tmp_path / "two").decrypt("kraken", SHA_A, blob)
    keyring = Keyring.load_or_create(tmp_path / "one")
    damaged = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(SecretsMismatchError):
        keyring.decrypt("kraken", SHA_A, damaged)


def test_master_key_file_is_private_and_never_replaced(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "dir"
    first = Keyring.load_or_create(data_dir)
    key_file = data_dir / MASTER_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    content = key_file.read_bytes()
    assert len(content) == 32
    blob = first.encrypt("kraken", SHA_A, {"k": TOKEN})
    again = Keyring.load_or_create(data_dir)
    assert key_file.read_bytes() == content
    assert again.decrypt("kraken", SHA_A, blob) == {"k": TOKEN}
    assert [p.name for p in data_dir.iterdir()] == [MASTER_KEY_FILE]
    assert repr(again) == "Keyring(<master key hidden>)"


def test_damaged_master_key_is_reported_not_replaced(tmp_path: Path) -> None:
    (tmp_path / MASTER_KEY_FILE).write_bytes(b"short")
    with pytest.raises(MasterKeyError, match=r"is damaged \(5 bytes, expected 32\)"):
        Keyring.load_or_create(tmp_path)
    assert (tmp_path / MASTER_KEY_FILE).read_bytes() == b"short"


def test_system_context_env_names_the_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "system_context"
    key_file.write_bytes(b"0123456789abcdef0123456789abcdef-extra\n")
    monkeypatch.setenv("QUASAR_SYSTEM_CONTEXT", str(key_file))
    data_dir = tmp_path / "data"
    blob = Keyring.load_or_create(data_dir).encrypt("kraken", SHA_A, {"k": TOKEN})
    assert not (data_dir / MASTER_KEY_FILE).exists()
    assert Keyring.load_or_create(tmp_path / "else").decrypt("kraken", SHA_A, blob) == {"k": TOKEN}
    key_file.write_bytes(b"too short")
    with pytest.raises(MasterKeyError, match="needs at least 32"):
        Keyring.load_or_create(data_dir)


@pytest.fixture
async def registry(registry: ProviderRegistry) -> ProviderRegistry:
    await registry.add(FILES / "original_style_live.py")
    return registry


async def _database_text(db: Database) -> tuple[str, bytes, bytes]:
    """Every column of every provider row as text, the dump form of the table, the raw blobs."""
    rows = await db.fetch("SELECT to_jsonb(p)::text AS row FROM providers p")
    async with db.pool.acquire() as conn:
        dump = io.BytesIO()
        await conn.copy_from_table("providers", output=dump)
        blobs = await conn.fetch("SELECT secrets FROM providers WHERE secrets IS NOT NULL")
    return "\n".join(r["row"] for r in rows), dump.getvalue(), b"".join(r[0] for r in blobs)


async def test_stored_secrets_are_nowhere_in_plain_text(registry: ProviderRegistry) -> None:
    await registry.set_secrets("wsdemo", {"api_token": TOKEN})
    rows, dump, blobs = await _database_text(registry.db)
    assert blobs
    for secret in (TOKEN, TOKEN.encode().hex()):
        assert secret not in rows
        assert secret.encode() not in dump
    assert TOKEN.encode() not in blobs
    record = await registry.get("wsdemo")
    assert record.secret_names == ["api_token"]
    assert TOKEN not in repr(record)


async def test_secrets_merge_and_an_empty_value_deletes(registry: ProviderRegistry) -> None:
    await registry.db.execute(
        "UPDATE providers SET capabilities = capabilities - 'secrets' WHERE name = 'wsdemo'"
    )
    await registry.set_secrets("wsdemo", {"api_token": TOKEN})
    record = await registry.set_secrets("wsdemo", {"user": SECOND})
    assert record.secret_names == ["api_token", "user"]
    provider = await registry.load("wsdemo")
    await provider.aclose()
    assert (provider.context.get("api_token"), provider.context.get("user")) == (TOKEN, SECOND)
    assert TOKEN not in repr(provider.context)
    record = await registry.set_secrets("wsdemo", {"api_token": ""})
    assert record.secret_names == ["user"]


async def test_undeclared_secret_names_are_refused(registry: ProviderRegistry) -> None:
    with pytest.raises(InvalidInputError, match="wsdemo has no secret 'apikey'"):
        await registry.set_secrets("wsdemo", {"apikey": TOKEN})
    assert (await registry.get("wsdemo")).secret_names == []


async def test_replacing_the_code_drops_secrets_and_says_so(
    registry: ProviderRegistry, tmp_path: Path
) -> None:
    await registry.set_secrets("wsdemo", {"api_token": TOKEN})
    changed = tmp_path / "wsdemo.py"
    changed.write_text((FILES / "original_style_live.py").read_text() + "\n# v2\n")
    record = await registry.add(changed, replace=True)
    assert record.secret_names == []
    assert record.notices == [
        "the code changed, so the secrets of wsdemo (api_token) were dropped; "
        "set them again with `quasar provider secret wsdemo KEY=VALUE...`"
    ]
    provider = await registry.load("wsdemo")
    await provider.aclose()
    assert provider.context.get("api_token") is None


async def test_secrets_copied_to_other_code_do_not_decrypt(registry: ProviderRegistry) -> None:
    await registry.set_secrets("wsdemo", {"api_token": TOKEN})
    await registry.db.execute(
        "UPDATE providers SET source = source || '#', sha256 = encode(sha256(convert_to("
        "source || '#', 'UTF8')), 'hex') WHERE name = 'wsdemo'"
    )
    with pytest.raises(SecretsMismatchError, match="set them again"):
        await registry.load("wsdemo")
