"""Provider code: validated in a child process, stored with its hash, loaded and run.

Hostile files must be rejected with one line that names the problem, and must leave this
process exactly as it was.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
import websockets
from aiohttp import web

from quasar_tui.core.errors import ConflictError, InvalidInputError, NotFoundError, QuasarError
from quasar_tui.core.intervals import Interval
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.validation import validate_file
from quasar_tui.sandbox.loader import InvalidProviderError
from quasar_tui.sdk import Bar

FILES = Path(__file__).parent / "provider_files"
DOCS = Path(__file__).parent.parent / "docs" / "providers.md"
BASES = "HistoricalDataProvider or LiveDataProvider"

HOSTILE = [
    ("no_class.py", f"no provider class found: define one subclass of {BASES}"),
    ("two_classes.py", "2 provider classes (A, B): a file must define exactly one"),
    ("wrong_base.py", f"Foo subclasses DataProvider directly: use {BASES}"),
    ("missing_method.py", "Foo does not implement get_history"),
    ("no_name.py", 'Foo has no name: set name = "..."'),
    ("missing_import.py", "import failed: No module named 'nope'"),
    ("raises_at_import.py", "raised ValueError at import: boom"),
    ("memory_hog.py", "used more than 1024 MiB of memory at import"),
    ("sys_exit.py", "called sys.exit() at import"),
    ("os_exit.py", "validator crashed"),
    ("segfault.py", "validator crashed (killed by SIGSEGV)"),
]
UNREADABLE = [
    (
        b"from quasar_tui.sdk import LiveDataProvider\n\nclass X(LiveDataProvider:\n",
        "syntax error at line 3: ",
    ),
    (b"# caf\xe9 in Latin-1\nname = 'x'\n", "file is not UTF-8 text"),
]


def _provider_modules() -> set[str]:
    return {m for m in sys.modules if m.startswith("quasar_provider_") or m == "nope"}


def _assert_untouched(modules_before: set[str], rss_before: int) -> None:
    assert _provider_modules() == modules_before
    assert "QUASAR_HOSTILE_WAS_HERE" not in os.environ
    assert not hasattr(builtins, "quasar_hostile")
    assert psutil.Process().memory_info().rss - rss_before < 64 * 1024 * 1024


@pytest.mark.parametrize(("filename", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_hostile_file_is_rejected_with_its_reason(filename: str, reason: str) -> None:
    modules, rss = _provider_modules(), psutil.Process().memory_info().rss
    with pytest.raises(InvalidProviderError) as caught:
        await validate_file(FILES / filename)
    assert caught.value.reason.startswith(reason), caught.value.reason
    assert str(caught.value) == f"{filename}: {caught.value.reason}"
    assert "\n" not in str(caught.value)
    _assert_untouched(modules, rss)


@pytest.mark.parametrize(("data", "reason"), UNREADABLE, ids=["syntax-error", "not-utf8"])
async def test_unreadable_file_is_rejected(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "broken.py"
    path.write_bytes(data)
    with pytest.raises(InvalidProviderError, match=re.escape(reason)):
        await validate_file(path)


async def test_endless_import_is_stopped() -> None:
    with pytest.raises(InvalidProviderError) as caught:
        await validate_file(FILES / "infinite_loop.py", time_limit=2)
    assert caught.value.reason == "took longer than 2 s to import (a sleep or an endless loop?)"


async def test_prints_of_the_provider_cannot_pass_for_a_report(tmp_path: Path) -> None:
    path = tmp_path / "liar.py"
    path.write_text(
        'import sys, os\nprint(\'{"ok": true, "name": "x"}\')\nsys.stdout.flush()\nos._exit(0)\n'
    )
    with pytest.raises(InvalidProviderError, match="validator crashed"):
        await validate_file(path)


async def test_original_style_live_provider_validates() -> None:
    report = await validate_file(FILES / "original_style_live.py")
    assert (report.name, report.kind, report.class_name) == ("wsdemo", "live", "WsDemo")
    caps = report.capabilities
    assert caps["has_history"] is True
    assert caps["secrets"] == ["api_token"]
    assert caps["rate_limit"] == [5, 1.0]
    assert caps["concurrency"] == 2
    assert caps["intervals"] == [i.value for i in Interval]
    assert caps["configurable"]["ws_url"]["help"] == "stream endpoint"


async def _serve_bars(received: list[dict]) -> web.AppRunner:
    async def bars(request: web.Request) -> web.Response:
        received.append({"path": request.path, **request.query})
        row = {"t": 1_700_000_000, "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 10.0}
        return web.json_response([row])

    app = web.Application()
    app.router.add_get("/bars/{sym}", bars)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


async def test_original_style_provider_loads_and_talks_to_loopback_services(
    registry: ProviderRegistry,
) -> None:
    subscribed: list[dict] = []
    requested: list[dict] = []

    async def stream(ws) -> None:
        subscribed.append(json.loads(await ws.recv()))
        await ws.send(json.dumps({"type": "ack"}))
        await ws.send(
            json.dumps(
                {
                    "type": "bar",
                    "s": "AAA",
                    "t": 1_700_000_040,
                    "o": 1,
                    "h": 3,
                    "l": 1,
                    "c": 2,
                    "v": 5,
                }
            )
        )

    runner = await _serve_bars(requested)
    async with websockets.serve(stream, "127.0.0.1", 0) as server:
        ws_port = server.sockets[0].getsockname()[1]
        http_port = runner.addresses[0][1]
        await registry.add(FILES / "original_style_live.py")
        await registry.set_preferences(
            "wsdemo",
            {
                "ws_url": f"ws://127.0.0.1:{ws_port}/ws",
                "base_url": f"http://127.0.0.1:{http_port}",
            },
        )
        await registry.set_secrets("wsdemo", {"api_token": "tok-123"})
        provider = await registry.load("wsdemo")
        try:
            ws = await provider._connect()
            await ws.send(json.dumps(await provider._subscribe(Interval.M1, ["AAA"])))
            parsed = [await provider._parse_message(await ws.recv()) for _ in range(2)]
            await ws.close()
            start = datetime(2023, 11, 14, tzinfo=UTC)
            history = [b async for b in provider.get_history("AAA", start, start, Interval.D1)]
        finally:
            await provider.aclose()
            await runner.cleanup()
    assert subscribed == [
        {"action": "subscribe", "token": "tok-123", "interval": "1min", "symbols": ["AAA"]}
    ]
    assert parsed[0] == []
    assert parsed[1] == [
        Bar(
            ts=datetime.fromtimestamp(1_700_000_040, UTC),
            open=1,
            high=3,
            low=1,
            close=2,
            volume=5,
            symbol="AAA",
        )
    ]
    assert requested[0]["path"] == "/bars/AAA"
    assert requested[0]["api_token"] == "tok-123"
    assert history[0].close == 1.5


async def test_add_stores_code_and_capabilities(registry: ProviderRegistry) -> None:
    record = await registry.add(FILES / "good_historical.py")
    assert (record.name, record.kind, record.class_name) == ("synthetic", "historical", "Synthetic")
    assert record.sha256 == (await registry.validate_file(FILES / "good_historical.py")).sha256
    assert record.capabilities["intervals"] == ["1h", "1d"]
    assert (record.enabled, record.status, record.bundled, record.asset_count) == (
        True,
        "ok",
        False,
        0,
    )
    assert [r.name for r in await registry.list()] == ["synthetic"]
    stored = await registry.db.fetchval("SELECT source FROM providers WHERE name = 'synthetic'")
    assert stored == (FILES / "good_historical.py").read_text()


async def test_adding_a_name_twice_needs_replace(registry: ProviderRegistry) -> None:
    await registry.add(FILES / "good_historical.py")
    with pytest.raises(ConflictError, match=r"already registered.*--replace"):
        await registry.add(FILES / "good_historical.py")


async def test_a_rejected_file_stores_nothing(registry: ProviderRegistry) -> None:
    with pytest.raises(InvalidProviderError):
        await registry.add(FILES / "raises_at_import.py")
    assert await registry.list() == []


async def test_preferences_are_checked_merged_and_reach_the_instance(
    registry: ProviderRegistry,
) -> None:
    await registry.add(FILES / "good_historical.py")
    await registry.set_preferences("synthetic", {"base_price": "150"})
    record = await registry.set_preferences("synthetic", {"venue": "XNAS"})
    assert record.preferences == {"base_price": 150.0, "venue": "XNAS"}
    with pytest.raises(InvalidInputError, match="unknown preference 'colour'"):
        await registry.set_preferences("synthetic", {"colour": "red"})
    with pytest.raises(InvalidInputError, match="venue must be one of XNYS, XNAS"):
        await registry.set_preferences("synthetic", {"venue": "LSE"})
    provider = await registry.load("synthetic")
    start = datetime(2024, 1, 1, tzinfo=UTC)
    bars = [b async for b in provider.get_history("AAA", start, start.replace(hour=2), Interval.H1)]
    await provider.aclose()
    assert provider.context.preferences == {"base_price": 150.0, "adjusted": True, "venue": "XNAS"}
    assert [(b.ts.hour, b.open) for b in bars] == [(0, 150.0), (1, 151.0)]


async def test_replacing_code_keeps_valid_preferences(
    registry: ProviderRegistry, tmp_path: Path
) -> None:
    await registry.add(FILES / "good_historical.py")
    await registry.set_preferences("synthetic", {"base_price": "7", "venue": "XNAS"})
    changed = tmp_path / "synthetic.py"
    changed.write_text(
        (FILES / "good_historical.py")
        .read_text()
        .replace('choices=("XNYS", "XNAS")', 'choices=("XNYS",)')
    )
    record = await registry.add(changed, replace=True)
    assert record.preferences == {"base_price": 7.0}
    assert record.notices == [
        "preference venue of synthetic was dropped: venue must be one of XNYS, got 'XNAS'"
    ]


async def test_load_refuses_code_that_changed_in_the_database(
    registry: ProviderRegistry,
) -> None:
    await registry.add(FILES / "good_historical.py")
    await registry.db.execute(
        "UPDATE providers SET source = source || 'import os' WHERE name = 'synthetic'"
    )
    with pytest.raises(QuasarError, match="does not match its sha256"):
        await registry.load("synthetic")


async def test_remove_cascades_but_keeps_bars_unless_purged(registry: ProviderRegistry) -> None:
    for path in ("good_historical.py", "original_style_live.py"):
        await registry.add(FILES / path)
    for name in ("synthetic", "wsdemo"):
        await registry.db.execute("INSERT INTO assets (provider, symbol) VALUES ($1, 'AAA')", name)
        await registry.db.execute(
            "INSERT INTO subscriptions (provider, symbol, interval, mode) "
            "VALUES ($1, 'AAA', '1d', 'historical')",
            name,
        )
        await registry.db.execute(
            "INSERT INTO historical_data (provider, symbol, interval, ts, open, high, low, close)"
            " VALUES ($1, 'AAA', '1d', now(), 1, 1, 1, 1)",
            name,
        )
    assert (await registry.get("synthetic")).asset_count == 1

    kept = await registry.remove("synthetic")
    assert kept["removed"] == {"assets": 1, "mappings": 0, "subscriptions": 1}
    assert kept["kept"] == {"historical_data": 1, "live_data": 0, "live_ticks": 0}
    purged = await registry.remove("wsdemo", purge_data=True)
    assert purged["kept"] == {}
    assert purged["removed"]["historical_data"] == 1

    bars = await registry.db.fetch("SELECT provider FROM historical_data")
    assert [r["provider"] for r in bars] == ["synthetic"]
    assert await registry.db.fetchval("SELECT count(*) FROM subscriptions") == 0
    with pytest.raises(NotFoundError, match="no provider named 'synthetic'"):
        await registry.remove("synthetic")


async def test_enabled_and_status(registry: ProviderRegistry) -> None:
    await registry.add(FILES / "good_historical.py")
    assert (await registry.set_enabled("synthetic", False)).enabled is False
    await registry.set_status("synthetic", "error", "HTTP 401 from /bars")
    record = await registry.get("synthetic")
    assert (record.status, record.status_detail) == ("error", "HTTP 401 from /bars")
    with pytest.raises(NotFoundError):
        await registry.set_status("nobody", "ok")


async def test_ensure_bundled_registers_updates_and_reports(
    registry: ProviderRegistry, tmp_path: Path
) -> None:
    shipped = tmp_path / "providers"
    shipped.mkdir()
    shutil.copy(FILES / "good_historical.py", shipped / "synthetic.py")
    shutil.copy(FILES / "no_name.py", shipped / "broken.py")
    (shipped / "__init__.py").write_text("")

    first = await registry.ensure_bundled(shipped)
    assert first == [
        'bundled provider broken.py skipped: Foo has no name: set name = "..."',
        "registered bundled provider synthetic",
    ]
    assert (await registry.get("synthetic")).bundled is True
    await registry.set_secrets("synthetic", {"api_key": "k-1"})

    (shipped / "broken.py").unlink()
    assert await registry.ensure_bundled(shipped) == []

    (shipped / "synthetic.py").write_text((shipped / "synthetic.py").read_text() + "\n# v2\n")
    assert await registry.ensure_bundled(shipped) == ["updated bundled provider synthetic"]
    provider = await registry.load("synthetic")
    await provider.aclose()
    assert provider.context.get("api_key") == "k-1"


async def test_a_removed_bundled_provider_stays_removed_until_added_again(
    registry: ProviderRegistry, tmp_path: Path
) -> None:
    shipped = tmp_path / "providers"
    shipped.mkdir()
    shutil.copy(FILES / "good_historical.py", shipped / "synthetic.py")
    await registry.ensure_bundled(shipped)
    await registry.remove("synthetic")

    (shipped / "synthetic.py").write_text((shipped / "synthetic.py").read_text() + "# v2\n")
    assert await registry.ensure_bundled(shipped) == []
    assert [r.name for r in await registry.list()] == []

    await registry.add(shipped / "synthetic.py")
    await registry.remove("synthetic")
    assert await registry.ensure_bundled(shipped) == ["registered bundled provider synthetic"]


async def test_ensure_bundled_leaves_a_users_provider_of_that_name(
    registry: ProviderRegistry, tmp_path: Path
) -> None:
    await registry.add(FILES / "good_historical.py")
    shipped = tmp_path / "providers"
    shipped.mkdir()
    (shipped / "synthetic.py").write_text((FILES / "good_historical.py").read_text() + "# new\n")
    lines = await registry.ensure_bundled(shipped)
    assert lines == [
        "bundled provider synthetic.py not installed: your own provider synthetic has that name"
    ]
    assert (await registry.get("synthetic")).bundled is False


async def test_ensure_bundled_runs_with_the_shipped_directory(registry: ProviderRegistry) -> None:
    lines = await registry.ensure_bundled()
    records = await registry.list()
    assert {r.name for r in records} == {"EODHD", "KRAKEN", "POLYGON", "SIMULATED"}
    assert all(r.bundled for r in records)
    assert {f"registered bundled provider {r.name}" for r in records} <= set(lines)


def _doc_examples() -> list[tuple[str, str]]:
    text = DOCS.read_text()
    blocks = re.findall(r"```python\n# file: (\S+)\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    return blocks


async def test_the_guide_examples_validate(tmp_path: Path) -> None:
    kinds = set()
    for filename, body in _doc_examples():
        path = tmp_path / filename
        path.write_text(body)
        kinds.add((await validate_file(path)).kind)
    assert kinds == {"historical", "live"}
