"""API keys in the console (Dashboard, K): list, create (shown once, never logged), revoke."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from registry_ui import SIZE, field_error, notices, open_mode, plain, until_screen
from textual.widgets import Checkbox, Input, Static
from tui_helpers import wait_for

from quasar_tui.registry.apikeys import key_id_of
from quasar_tui.tui.modals.api_keys import ApiKeysModal, KeyShownModal, NewKeyModal
from quasar_tui.tui.modals.confirm import ConfirmModal
from quasar_tui.tui.modes.dashboard import DashboardScreen
from quasar_tui.tui.widgets.vim import VimDataTable


async def test_a_key_is_created_shown_once_and_revoked(
    make_console, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_mode(pilot, "1", DashboardScreen)
        await pilot.press("K")
        keys = await until_screen(pilot, ApiKeysModal)
        assert isinstance(keys, ApiKeysModal)
        await wait_for(pilot, lambda: "No API keys yet" in plain(keys.query_one("#keys-status")))

        await pilot.press("n")
        form = await until_screen(pilot, NewKeyModal)
        assert isinstance(form, NewKeyModal)
        form.query_one("#key-name", Input).value = "notebook"
        form.query_one("#scope-stream", Checkbox).value = False
        form.query_one("#key-expires", Input).value = "next week"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: field_error(app, "expires") != "")
        assert "is not a date" in field_error(app, "expires")
        form.query_one("#key-expires", Input).value = "2031-01-01"
        await pilot.press("ctrl+s")

        shown = await until_screen(pilot, KeyShownModal)
        assert isinstance(shown, KeyShownModal)
        text = plain(shown.query_one("#key-text", Static)).strip()
        stored = await app.services.api_keys.find(key_id_of(text) or "")
        assert stored is not None and app.services.api_keys.matches(text, stored)
        assert (stored.key.scopes, stored.key.expires_at) == (
            ["read"],
            datetime(2031, 1, 1, tzinfo=UTC),
        )
        await pilot.press("c")
        assert app.clipboard == text
        await pilot.press("escape")
        await until_screen(pilot, ApiKeysModal)
        table = keys.query_one(VimDataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        assert [str(c) for c in table.get_row_at(0)][:3] == ["notebook", "read", "50"]
        # Shown once: nowhere else on screen, in a notice, the console's log or any log.
        assert text not in plain(keys.query_one("#keys-status"))
        assert all(text not in n for n in notices(app))
        assert all(text not in entry.message for entry in app.services.log)
        assert all(text not in r.getMessage() for r in caplog.records)

        await pilot.press("d")
        await until_screen(pilot, ConfirmModal)
        await pilot.press("y")
        await until_screen(pilot, ApiKeysModal)
        await wait_for(pilot, lambda: table.row_count == 0)
        assert await app.services.api_keys.list() == []
        assert "API key notebook revoked" in notices(app)
