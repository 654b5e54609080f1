"""The sandbox drill: providers that block, crash or leak memory run beside the bundled
SIMULATED feed in one engine. Each bad one is restarted, then parked with its last error line
(shown by `quasar status`), while SIMULATED goes on streaming and loses no trade."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from helpers import refresh_assets, until, with_simulated

from quasar_tui.cli.status_cmd import provider_line
from quasar_tui.engine.engine import Engine
from quasar_tui.engine.publisher import EngineMonitor
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.sandbox import confine
from quasar_tui.sandbox.hosted import HostOptions
from quasar_tui.store.database import Database

FILES = Path(__file__).parent / "provider_files"
# name -> (its misbehaviour, what its parked state must say)
BAD = {
    "BLOCKS": ("block", "did not answer for 1 s; killed"),
    "CRASHES": ("crash", "exited with status 3: giving up on everything"),
    "LEAKS": ("leak", "ran out of its 512 MiB memory limit"),
}
# Fast restarts, and a host whose loop is blocked for a second is taken for hung.
FAST = HostOptions(backoff_base=0.05, backoff_cap=0.2, unresponsive_after=1.0, ping_every=0.2)


@pytest.fixture
async def engine(db: Database, registry: ProviderRegistry, tmp_path: Path) -> AsyncIterator[Engine]:
    await with_simulated(registry)
    store = SubscriptionStore(db)
    await store.add("SIMULATED", ["SIM/BTC"], "1min", "live")
    template = (FILES / "drill_live.py").read_text()
    for name, (misbehave, _) in BAD.items():
        path = tmp_path / f"{name.lower()}.py"
        path.write_text(template.replace("__NAME__", name))
        await registry.add(path)
        await registry.set_preferences(name, {"misbehave": misbehave})
        await refresh_assets(registry, name)
        await store.add(name, ["X"], "1min", "live")
    await registry.set_preferences("LEAKS", {"memory_mib": "512"})
    made = Engine(db, registry, store, data_dir=tmp_path, reconcile_every=3600.0, host_options=FAST)
    await made.start()
    yield made
    await made.stop()


async def _ticks(db: Database) -> int:
    return await db.fetchval(
        "SELECT count(*) FROM live_ticks WHERE provider = 'SIMULATED' AND symbol = 'SIM/BTC'"
    )


def _hosts(engine: Engine) -> dict[str, dict]:
    return {name: seen.get("host", {}) for name, seen in engine.stats()["providers"].items()}


async def test_bad_providers_are_parked_while_simulated_loses_nothing(
    db: Database, engine: Engine
) -> None:
    await until(lambda: _ticks(db), "SIMULATED ticks stored")
    await until(
        lambda: all(_hosts(engine)[name].get("restarts", 0) >= 1 for name in BAD),
        "every bad provider restarted",
    )
    during = await _ticks(db)
    await until(
        lambda: all(_hosts(engine)[name]["state"].startswith("parked: ") for name in BAD),
        "every bad provider parked",
    )
    hosts = _hosts(engine)
    for name, (_, reason) in BAD.items():
        assert reason in hosts[name]["state"], hosts[name]
    assert hosts["SIMULATED"]["state"] == "running" and hosts["SIMULATED"]["restarts"] == 0

    async def more_ticks() -> bool:
        return await _ticks(db) > during

    await until(more_ticks, "SIMULATED ticks stored after the bad ones failed")

    async def parked_in_status() -> list[str] | None:
        stats = (await EngineMonitor(db).status()).stats
        seen = stats.get("providers") or {}
        lines = [provider_line(name, seen[name]) for name in BAD if name in seen]
        return lines if len(lines) == len(BAD) and all("parked: " in s for s in lines) else None

    lines = await until(parked_in_status, "the parked providers in `quasar status`")
    assert all("; host parked, isolation: " in line for line in lines)

    await engine.stop()
    low, high, count = await db.fetchrow(
        "SELECT min(seq), max(seq), count(*) FROM live_ticks "
        "WHERE provider = 'SIMULATED' AND symbol = 'SIM/BTC'"
    )
    assert count == high - low + 1  # every trade id from the first stored to the last


def test_db_info_says_how_provider_code_is_isolated(run_quasar) -> None:
    info = run_quasar("db", "info")
    assert info.returncode == 0, info.stderr
    assert f"providers:   isolation: {confine.isolation()}\n" in info.stdout
    as_json = run_quasar("db", "info", "--json")
    assert json.loads(as_json.stdout)["provider_isolation"] == confine.isolation()
