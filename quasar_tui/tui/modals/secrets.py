"""Set a provider's secrets: key names and whether each is set, with masked inputs.

Stored values are never read back, so they cannot be shown: an empty input keeps the stored
value, "remove" deletes it. A provider that declares no secret names takes any valid key name.
"""

from __future__ import annotations

from collections.abc import Iterator

from textual.widget import Widget
from textual.widgets import Checkbox, Input

from quasar_tui.core.errors import QuasarError
from quasar_tui.registry.records import ProviderRecord
from quasar_tui.sandbox.loader import SECRET_KEY_RE
from quasar_tui.tui.modals.form import Field, FormModal


class SecretsModal(FormModal[ProviderRecord]):
    SUBMIT_LABEL = "Save (Enter)"

    def __init__(self, record: ProviderRecord) -> None:
        super().__init__()
        self.record = record
        self.form_title = f"Secrets of {record.name} (stored encrypted, never shown)"
        declared = list(record.capabilities.get("secrets") or [])
        self.open_names = not declared
        self.names = list(dict.fromkeys(declared + sorted(record.secret_names)))

    def compose_fields(self) -> Iterator[Widget]:
        for n, name in enumerate(self.names):
            is_set = name in self.record.secret_names
            state = "set (leave empty to keep it)" if is_set else "not set"
            yield Field(
                name,
                Input(
                    password=True,
                    id=f"secret-{n}-value",
                    placeholder="new value" if is_set else "value",
                ),
                state,
                id=f"secret-{n}",
            )
            if is_set:
                yield Checkbox(f"remove {name}", id=f"secret-{n}-remove")
        if self.open_names:
            yield Field(
                "New key name",
                Input(id="new-name", placeholder="e.g. api_token"),
                f"{self.record.name} declares no secret names: any name is accepted",
                id="new-key",
            )
            yield Field("Its value", Input(password=True, id="new-value"), id="new-secret")

    def on_mount(self) -> None:
        self.query(Input).first().focus()

    def _values(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for n, name in enumerate(self.names):
            typed = self.query_one(f"#secret-{n}-value", Input).value
            remove = self.query(f"#secret-{n}-remove")
            if remove and remove.first(Checkbox).value:
                if typed:
                    self.fail(f"secret-{n}", "type a value or tick remove, not both")
                values[name] = ""
            elif typed:
                values[name] = typed
        if self.open_names:
            name = self.query_one("#new-name", Input).value.strip()
            typed = self.query_one("#new-value", Input).value
            if name and not SECRET_KEY_RE.match(name):
                self.fail(
                    "new-key",
                    f"{name!r} is not a valid secret name: use letters, "
                    "digits, '_', '.' or '-', starting with a letter or '_'",
                )
            elif name and not typed:
                self.fail("new-secret", f"type the value of {name}")
            elif typed and not name:
                self.fail("new-key", "name the key this value belongs to")
            elif name:
                values[name] = typed
        return values

    async def submit(self) -> None:
        values = self._values()
        if self.has_errors:
            return
        if not values:
            self.fail_form("nothing to save: type a new value, or tick remove")
            return
        try:
            record = await self.services.providers.set_secrets(self.record.name, values)
        except QuasarError as exc:
            self.fail_form(str(exc))
            return
        self.dismiss(record)
