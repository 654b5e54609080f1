"""Providers mode by keyboard, on the real database: add (validated), refresh assets,
preferences, secrets, enable/disable and remove."""

from __future__ import annotations

from registry_ui import PROVIDER_FILES as FILES
from registry_ui import SIZE, field_error, form_error, notices, open_mode, plain
from textual.app import App
from textual.command import CommandList, CommandPalette
from textual.widgets import Input, Static
from tui_helpers import started, wait_for

from quasar_tui.core.errors import NotFoundError
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.tui.commands import commands
from quasar_tui.tui.modals.add_provider import AddProviderModal
from quasar_tui.tui.modals.confirm import ConfirmModal
from quasar_tui.tui.modals.form import Field
from quasar_tui.tui.modals.preferences import PreferencesModal
from quasar_tui.tui.modals.secrets import SecretsModal
from quasar_tui.tui.modes import MODES
from quasar_tui.tui.modes.assets import AssetsScreen
from quasar_tui.tui.modes.mappings import MappingsScreen
from quasar_tui.tui.modes.providers import ProvidersScreen
from quasar_tui.tui.modes.subscriptions import SubscriptionsScreen
from quasar_tui.tui.widgets.vim import VimDataTable


def cell(app, row: int, column: str) -> str:
    table = app.screen.query_one("#provider-table", VimDataTable)
    return str(table.get_cell_at((row, [c.key.value for c in table.ordered_columns].index(column))))


async def open_providers(pilot) -> ProvidersScreen:
    return await open_mode(pilot, "2", ProvidersScreen)


async def registered(registry: ProviderRegistry, name: str) -> bool:
    try:
        await registry.get(name)
    except NotFoundError:
        return False
    return True


async def test_add_a_provider_file_by_keyboard_then_refresh_its_assets(make_console):
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_providers(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AddProviderModal))
        modal = app.screen
        modal.query_one("#path-input", Input).value = str(FILES / "good_historical.py")
        await pilot.press("enter")
        await wait_for(pilot, lambda: modal.report is not None)
        shown = plain(modal.query_one("#validation", Static))
        assert "synthetic" in shown and "1h 1d" in shown and "api_key" in shown
        assert not await registered(app.services.providers, "synthetic")

        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, ProvidersScreen) and "synthetic" in app.screen.records,
        )
        assert cell(app, 0, "name") == "synthetic"
        assert cell(app, 0, "kind") == "historical"
        assert cell(app, 0, "assets") == "0"

        await pilot.press("r")
        await wait_for(pilot, lambda: app.screen.records["synthetic"].asset_count == 2)
        assert cell(app, 0, "assets") == "2"
        assert any("2 assets" in n for n in notices(app))


def test_every_registry_mode_action_is_in_the_command_palette():
    by_mode: dict[str, set[str]] = {}
    for entry in commands():
        by_mode.setdefault(entry.mode or "", set()).add(entry.action)
    moves = {"clear_filter", "focus_list", "focus_alternatives"}
    for screen in (ProvidersScreen, AssetsScreen, MappingsScreen, SubscriptionsScreen):
        mode = next(m for m in MODES if m.screen is screen)
        actions = {b.action for b in screen.BINDINGS} - moves
        assert actions <= by_mode[mode.name], (mode.name, actions - by_mode[mode.name])
        assert all(b.id for b in screen.BINDINGS)


async def test_an_invalid_file_shows_the_reason_under_the_path_and_writes_nothing(
    make_console,
):
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_providers(pilot)
        await pilot.press("colon", *"provider: add")
        await wait_for(pilot, lambda: _palette_highlights(app, "provider: add"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AddProviderModal))
        modal = app.screen
        path = modal.query_one("#path-input", Input)
        path.value = str(FILES / "missing_method.py")
        await pilot.press("enter")
        await wait_for(pilot, lambda: field_error(app, "path") != "")
        assert "get_history" in field_error(app, "path")
        assert path.has_class("-invalid")
        assert modal.report is None

        path.value = str(FILES / "no_such_file.py")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "cannot read" in field_error(app, "path"))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ProvidersScreen))
        assert await app.services.providers.list() == []


async def test_preferences_are_checked_inline_and_secrets_never_shown(make_console, db):
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await app.services.providers.add(FILES / "good_historical.py")
        screen = await open_providers(pilot)
        await wait_for(pilot, lambda: "synthetic" in screen.records)

        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PreferencesModal))
        field = next(f for f in app.screen.query(Field) if f.label == "base_price")
        price = field.control
        assert isinstance(price, Input) and price.value == "100.0"
        await pilot.press("tab")
        assert price.has_focus
        price.value = "lots"
        await pilot.press("enter")
        await wait_for(pilot, lambda: field_error(app, field.id) != "")
        assert "base_price must be float" in field_error(app, field.id)
        assert (await app.services.providers.get("synthetic")).preferences == {}
        price.value = "120.5"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProvidersScreen))
        assert (await app.services.providers.get("synthetic")).preferences == {"base_price": 120.5}

        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SecretsModal))
        box = app.screen.query_one("#secret-0-value", Input)
        assert box.password
        await pilot.press(*"tok-123")
        assert "tok-123" not in app.export_screenshot()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProvidersScreen))
        assert (await app.services.providers.get("synthetic")).secret_names == ["api_key"]
        stored = await db.fetchval("SELECT secrets FROM providers WHERE name = 'synthetic'")
        assert b"tok-123" not in stored

        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SecretsModal))
        assert app.screen.query_one("#secret-0-value", Input).value == ""
        assert "tok-123" not in app.export_screenshot()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "nothing to save" in form_error(app))
        await pilot.press("escape")


async def test_disable_then_remove_after_confirming(make_console):
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await app.services.providers.add(FILES / "good_historical.py")
        screen = await open_providers(pilot)
        await wait_for(pilot, lambda: "synthetic" in screen.records)

        await pilot.press("e")
        await wait_for(pilot, lambda: not screen.records["synthetic"].enabled)
        assert not (await app.services.providers.get("synthetic")).enabled

        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ProvidersScreen))
        assert await registered(app.services.providers, "synthetic")

        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: "synthetic" not in screen.records)
        assert not await registered(app.services.providers, "synthetic")


UNREACHABLE = """
import socket

from quasar_tui.sdk import HistoricalDataProvider, SymbolInfo


class Unreachable(HistoricalDataProvider):
    name = "UNREACHABLE"

    async def fetch_available_symbols(self):
        raise socket.gaierror(-2, "Name or service not known")

    async def get_history(self, sym, start, end, interval):
        return
        yield
"""


async def test_a_failed_refresh_stays_in_the_status_column_worded_for_people(
    make_console, tmp_path
) -> None:
    path = tmp_path / "unreachable.py"
    path.write_text(UNREACHABLE)
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_providers(pilot)
        await app.services.providers.add(path)
        screen.reload()
        await wait_for(pilot, lambda: "UNREACHABLE" in screen.records)
        screen.table.move_cursor(row=screen.table.get_row_index("UNREACHABLE"))
        await pilot.press("r")
        await wait_for(pilot, lambda: screen.records["UNREACHABLE"].status == "refresh failed")
        row = screen.table.get_row_index("UNREACHABLE")
        assert cell(app, row, "status") == "refresh failed"
        assert "name not resolved" in (screen.records["UNREACHABLE"].status_detail or "")
        failure = next(n for n in notices(app) if "fetching symbols failed" in n)
        assert failure.count("UNREACHABLE") == 1
        assert "gaierror" not in failure and "Errno" not in failure


def _palette_highlights(app: App[object], command: str) -> bool:
    """The command palette is open and its highlighted (Enter's) choice is `command`."""
    screen = app.screen
    if not isinstance(screen, CommandPalette):
        return False
    found = screen.query_one(CommandList)
    index = found.highlighted
    return index is not None and command in str(found.get_option_at_index(index).prompt)
