"""A provider's preferences as a form generated from its CONFIGURABLE schema.

Booleans are checkboxes, settings with choices are selects, the rest are text checked against
the declared type. Only values that differ from the current ones are written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from textual.widget import Widget
from textual.widgets import Checkbox, Input, Select

from quasar_tui.core.errors import QuasarError
from quasar_tui.registry.providers import preference_schema
from quasar_tui.registry.records import ProviderRecord
from quasar_tui.sdk.settings import Setting
from quasar_tui.tui.modals.form import Field, FormModal


def schema_of(record: ProviderRecord) -> dict[str, Setting]:
    """The schema by key name (the stored JSON does not keep the declared order), the
    sandbox's memory limit included."""
    return dict(sorted(preference_schema(record.capabilities).items()))


def _control(setting: Setting, value: Any, control_id: str) -> Widget:
    if setting.type == "bool":
        return Checkbox("yes", bool(value), id=control_id)
    if setting.choices:
        options = [(str(choice), choice) for choice in setting.choices]
        current = value if value in setting.choices else setting.choices[0]
        return Select(options, value=current, allow_blank=False, id=control_id)
    return Input("" if value is None else str(value), id=control_id, placeholder=f"{setting.type}")


def _help(setting: Setting) -> str:
    default = "none" if setting.default is None else repr(setting.default)
    return f"{setting.help}  ({setting.type}, default {default})".strip()


class PreferencesModal(FormModal[ProviderRecord]):
    SUBMIT_LABEL = "Save (Enter)"

    def __init__(self, record: ProviderRecord) -> None:
        super().__init__()
        self.record = record
        self.form_title = f"Preferences of {record.name}"
        self.schema = schema_of(record)
        self.keys = list(self.schema)
        self.current = {
            key: record.preferences.get(key, setting.default)
            for key, setting in self.schema.items()
        }

    def compose_fields(self) -> Iterator[Widget]:
        for n, (key, setting) in enumerate(self.schema.items()):
            yield Field(
                key,
                _control(setting, self.current[key], f"pref-{n}-control"),
                _help(setting),
                id=f"pref-{n}",
            )

    def on_mount(self) -> None:
        if self.keys:
            self.query_one("#pref-0-control").focus()

    def _raw(self, n: int) -> Any:
        control = self.query_one(f"#pref-{n}-control")
        if isinstance(control, Checkbox | Select):
            return control.value
        assert isinstance(control, Input)
        return control.value

    async def submit(self) -> None:
        changed: dict[str, str] = {}
        for n, key in enumerate(self.keys):
            setting = self.schema[key]
            try:
                value = setting.coerce(key, self._raw(n))
            except ValueError as exc:
                self.fail(f"pref-{n}", str(exc))
                continue
            if value != self.current[key]:
                changed[key] = str(value)
        if self.has_errors:
            return
        if not changed:
            self.dismiss(self.record)
            return
        try:
            record = await self.services.providers.set_preferences(self.record.name, changed)
        except QuasarError as exc:
            self.fail_form(str(exc))
            return
        self.dismiss(record)
