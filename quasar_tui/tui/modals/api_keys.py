"""API keys of the HTTP API in the console: list, create, revoke (what `quasar apikey` does).

A new key is shown once, in its own window, and nowhere else: not in a notification, not in
the Log mode, not in any log. Only a keyed hash of it is stored, so it cannot be shown again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Footer, Input, Static

from quasar_tui.core.errors import QuasarError
from quasar_tui.core.messages import one_line
from quasar_tui.core.moments import moment
from quasar_tui.registry.apikeys import DEFAULT_RATE, SCOPES, ApiKey
from quasar_tui.tui.modals.confirm import Confirmed, ConfirmModal
from quasar_tui.tui.modals.form import CSS_FILE, Field, FormModal
from quasar_tui.tui.services.reads import READ_ERRORS
from quasar_tui.tui.widgets.vim import VimDataTable

if TYPE_CHECKING:
    from quasar_tui.tui.app import QuasarApp
    from quasar_tui.tui.services import Services

COLUMNS = ("Name", "Scopes", "Rate/s", "Created", "Expires", "Last used", "Uses")


def _when(ts: datetime | None) -> str:
    return f"{ts:%Y-%m-%d %H:%M}" if ts is not None else "-"


def key_row(key: ApiKey) -> tuple[str, ...]:
    return (
        key.name,
        ",".join(key.scopes),
        str(key.rate),
        _when(key.created_at),
        _when(key.expires_at),
        _when(key.last_used),
        f"{key.uses:,}",
    )


@dataclass(frozen=True)
class NewKey:
    """A key just created: its record and its text, which exists only until shown."""

    record: ApiKey
    text: str


class ApiKeysModal(ModalScreen[None]):
    """The keys, with `n` to create one and `d` to revoke the selected one."""

    CSS_PATH = CSS_FILE
    BINDINGS = [
        Binding("n", "create", "New key", tooltip="Create an API key", id="apikeys.create"),
        Binding("d", "revoke", "Revoke", tooltip="Revoke the selected key", id="apikeys.revoke"),
        Binding("escape", "close", "Close", id="apikeys.close"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[ApiKey] = []

    @property
    def services(self) -> Services:
        return cast("QuasarApp", self.app).services

    def compose(self) -> ComposeResult:
        with Vertical(classes="form-box keys-box"):
            yield Static(
                "API keys of the HTTP API (quasar serve): n creates one, d revokes the "
                "selected one at once",
                classes="form-title",
                markup=False,
            )
            yield VimDataTable(id="api-keys")
            yield Static("", id="keys-status", markup=False)
        yield Footer(compact=True)

    async def on_mount(self) -> None:
        table = self.query_one(VimDataTable)
        table.cursor_type = "row"
        table.add_columns(*COLUMNS)
        table.focus()
        await self.load()

    async def load(self) -> None:
        table = self.query_one(VimDataTable)
        status = self.query_one("#keys-status", Static)
        try:
            self.keys = await self.services.api_keys.list()
        except READ_ERRORS as exc:
            status.update(f"cannot list API keys: {one_line(exc)}")
            return
        table.clear()
        for key in self.keys:
            table.add_row(*key_row(key))
        status.update("" if self.keys else "No API keys yet: n creates one.")

    @property
    def selected(self) -> ApiKey | None:
        row = self.query_one(VimDataTable).cursor_row
        return self.keys[row] if 0 <= row < len(self.keys) else None

    def action_close(self) -> None:
        self.dismiss(None)

    @work(group="apikeys")
    async def action_create(self) -> None:
        made = await self.app.push_screen_wait(NewKeyModal())
        if made is None:
            return
        await self.load()
        await self.app.push_screen_wait(KeyShownModal(made))

    @work(group="apikeys")
    async def action_revoke(self) -> None:
        key = self.selected
        if key is None:
            return
        answer: Confirmed | None = await self.app.push_screen_wait(
            ConfirmModal(
                f"Revoke the API key {key.name}?",
                [
                    f"Scopes {','.join(key.scopes)}, used {key.uses:,} times, last "
                    f"{_when(key.last_used)}.",
                    "Clients sending it get 401 at once; this cannot be undone.",
                ],
                confirm_label="Revoke",
            )
        )
        if answer is None:
            return
        try:
            await self.services.api_keys.revoke(key.name)
        except (QuasarError, *READ_ERRORS) as exc:
            self.notify(f"cannot revoke {key.name}: {one_line(exc)}", severity="error")
            return
        self.notify(f"API key {key.name} revoked")
        await self.load()


class NewKeyModal(FormModal[NewKey]):
    FORM_TITLE = "New API key (shown once after this)"
    SUBMIT_LABEL = "Create (Enter)"
    BUSY_TEXT = "Creating..."

    def compose_fields(self) -> Iterator[Widget]:
        yield Field("Name", Input(id="key-name", placeholder="e.g. notebook"), id="name")
        yield Field(
            "Scopes",
            Horizontal(
                *(Checkbox(scope, value=True, id=f"scope-{scope}") for scope in SCOPES),
                classes="scopes",
            ),
            "read: HTTP reads; stream: the WebSocket stream",
            id="scopes",
        )
        yield Field(
            "Expires",
            Input(id="key-expires", placeholder="never"),
            "a date (YYYY-MM-DD, 00:00 UTC) or an ISO time; empty: never",
            id="expires",
        )
        yield Field("Rate", Input(str(DEFAULT_RATE), id="key-rate"), "requests a second", id="rate")

    def on_mount(self) -> None:
        self.query_one("#key-name", Input).focus()

    async def submit(self) -> None:
        name = self.query_one("#key-name", Input).value.strip()
        scopes = [s for s in SCOPES if self.query_one(f"#scope-{s}", Checkbox).value]
        if not name:
            self.fail("name", "name the key after who or what uses it")
        if not scopes:
            self.fail("scopes", "tick read, stream or both")
        expires = None
        try:
            expires = moment(self.query_one("#key-expires", Input).value.strip() or None)
        except QuasarError as exc:
            self.fail("expires", str(exc))
        rate_text = self.query_one("#key-rate", Input).value.strip()
        if not rate_text.isdigit() or int(rate_text) < 1:
            self.fail("rate", "give a whole number of requests a second, 1 or more")
        if self.has_errors:
            return
        try:
            record, text = await self.services.api_keys.create(
                name, scopes, expires_at=expires, rate=int(rate_text), now=datetime.now(UTC)
            )
        except QuasarError as exc:
            self.fail_form(str(exc))
            return
        self.dismiss(NewKey(record, text))


class KeyShownModal(ModalScreen[None]):
    """The one time a key is shown: `c` copies it to the clipboard, Escape closes for good."""

    CSS_PATH = CSS_FILE
    BINDINGS = [
        Binding("c", "copy", "Copy", tooltip="Copy the key to the clipboard", id="apikey.copy"),
        Binding("escape", "close", "Close", id="apikey.shown.close"),
    ]

    def __init__(self, made: NewKey) -> None:
        super().__init__()
        self.made = made

    def compose(self) -> ComposeResult:
        record = self.made.record
        expiry = f", expires {_when(record.expires_at)} UTC" if record.expires_at else ""
        with Vertical(classes="form-box confirm-box"):
            yield Static(f"API key {record.name}", classes="form-title", markup=False)
            yield Static(self.made.text, id="key-text", markup=False)
            yield Static(
                f"Scopes {','.join(record.scopes)}, {record.rate} requests/s{expiry}. Shown "
                "once: store it now (c copies it). Send it as X-API-Key or Authorization: "
                "Bearer.",
                classes="confirm-detail",
                markup=False,
            )
            with Horizontal(classes="form-buttons"):
                yield Button("Copy (c)", variant="primary", id="key-copy")
                yield Button("Close (Esc)", id="key-close")
        yield Footer(compact=True)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.made.text)
        self.notify(f"API key {self.made.record.name} copied to the clipboard")

    def action_close(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "key-copy":
            self.action_copy()
        else:
            self.action_close()
