"""Subscribe symbols of a provider at an interval, historical or live.

The interval list shows every interval Quasar stores, marking the ones the provider does not
offer; picking one of those is refused under the field. Mode choices follow the provider's
kind. Symbols complete as they are typed (right arrow accepts), from the provider's assets and
the common symbols mapped to them; a common symbol stands for the provider's symbol mapped to
it. An unknown symbol is refused with close matches, or a pointer to the Assets mode, all or
nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, cast

from textual.binding import Binding
from textual.suggester import Suggester
from textual.widget import Widget
from textual.widgets import Input, Select

from quasar_tui.core.errors import InvalidInputError, NotFoundError, QuasarError
from quasar_tui.core.intervals import Interval
from quasar_tui.registry.assets import close_matches
from quasar_tui.registry.records import ProviderRecord
from quasar_tui.registry.subscriptions import SubscriptionRecord
from quasar_tui.tui.modals.form import Field, FormModal
from quasar_tui.tui.services.reads import READ_ERRORS

if TYPE_CHECKING:
    from quasar_tui.tui.app import QuasarApp
    from quasar_tui.tui.modes.base import ModeScreen
    from quasar_tui.tui.services import Services

DEFAULT_LOOKBACK = 365
_SPLIT = re.compile(r"[\s,]+")
_LAST_WORD = re.compile(r"[^\s,]*$")
_LOOKED_AT = 50


def offered_intervals(record: ProviderRecord) -> list[str]:
    offered = record.capabilities.get("intervals")
    return list(offered) if offered is not None else [i.value for i in Interval]


def modes_of(record: ProviderRecord) -> list[str]:
    if record.kind != "live":
        return ["historical"]
    return ["live", "historical"] if record.capabilities.get("has_history") else ["live"]


def default_interval(record: ProviderRecord, mode: str) -> str:
    offered = offered_intervals(record)
    preferred = Interval.M1.value if mode == "live" else Interval.D1.value
    return preferred if preferred in offered else (offered[0] if offered else preferred)


def split_symbols(text: str) -> list[str]:
    return [s for s in _SPLIT.split(text.strip()) if s]


def completion(word: str, *names: Sequence[str]) -> str | None:
    """The first name, list by list, that `word` begins (any case) and is longer than it."""
    wanted = word.upper()
    for listed in names:
        for name in listed:
            if len(name) > len(word) and name.upper().startswith(wanted):
                return name
    return None


class SymbolSuggester(Suggester):
    """Completes the last symbol typed: from the chosen provider's assets (best matches of the
    asset search), then from the common symbols mapped to them (read once per provider)."""

    def __init__(self, services: Services, provider: Callable[[], str | None]) -> None:
        """`provider` names the provider chosen in the form now; it is read without the DOM
        (a suggestion may be computed after the form has gone)."""
        super().__init__(use_cache=False, case_sensitive=True)  # the provider can change
        self.services = services
        self.provider = provider
        self._commons: dict[str, list[str]] = {}

    async def get_suggestion(self, value: str) -> str | None:
        provider = self.provider()
        word = _LAST_WORD.search(value)
        if provider is None or word is None or not word.group():
            return None
        try:
            assets = await self.services.assets.list(provider, word.group(), limit=_LOOKED_AT)
            if provider not in self._commons:
                mappings = await self.services.mappings.list(None, provider)
                self._commons[provider] = sorted(m.common_symbol for m in mappings)
        except READ_ERRORS:
            return None  # no completion; submitting says what is wrong
        listed = [a.symbol for a in assets if a.active]  # a delisted one cannot be subscribed
        found = completion(word.group(), listed, self._commons[provider])
        return None if found is None else value[: word.start()] + found


class SubscribeModal(FormModal[list[SubscriptionRecord]]):
    FORM_TITLE = "Subscribe"
    SUBMIT_LABEL = "Subscribe (Enter)"

    def __init__(
        self,
        providers: Sequence[ProviderRecord],
        provider: str | None = None,
        symbols: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.providers = {p.name: p for p in providers}
        if provider not in self.providers:
            provider = next(iter(self.providers), None)
        self.initial_provider = provider
        self.provider_name = provider
        self.initial_symbols = " ".join(symbols)

    def compose_fields(self) -> Iterator[Widget]:
        yield Field(
            "Provider",
            Select(
                [(name, name) for name in self.providers],
                value=self.initial_provider or Select.NULL,
                prompt="pick a provider",
                id="provider-select",
            ),
            id="sub-provider",
        )
        yield Field(
            "Symbols",
            Input(
                self.initial_symbols,
                id="symbols-input",
                placeholder="separate several with spaces or commas",
                suggester=SymbolSuggester(self.services, lambda: self.provider_name),
            ),
            "the provider's symbols, or common symbols mapped to them; right arrow completes",
            id="sub-symbols",
        )
        yield Field(
            "Interval",
            Select([(i.value, i.value) for i in Interval], allow_blank=False, id="interval-select"),
            id="sub-interval",
        )
        yield Field(
            "Mode",
            Select(
                [("historical", "historical"), ("live", "live")],
                allow_blank=False,
                id="mode-select",
            ),
            id="sub-mode",
        )
        yield Field(
            "Lookback (days)",
            Input(str(DEFAULT_LOOKBACK), id="lookback-input"),
            "history to collect for a new series (historical mode)",
            id="sub-lookback",
        )

    def on_mount(self) -> None:
        self._provider_chosen(self.initial_provider)
        focus = "#symbols-input" if self.initial_provider else "#provider-select"
        self.query_one(focus).focus()

    def chosen_provider(self) -> ProviderRecord | None:
        value = self._select("provider-select").value
        return self.providers.get(value) if isinstance(value, str) else None

    def _select(self, select_id: str) -> Select[str]:
        return self.query_one(f"#{select_id}", Select)

    def _provider_chosen(self, name: str | None) -> None:
        self.provider_name = name if name in self.providers else None
        record = self.providers.get(name) if name else None
        modes = modes_of(record) if record else ["historical", "live"]
        mode_select = self._select("mode-select")
        mode_select.set_options([(m, m) for m in modes])
        mode_select.value = modes[0]
        offered = offered_intervals(record) if record else [i.value for i in Interval]
        interval_select = self._select("interval-select")
        interval_select.set_options(
            [
                (i.value if i.value in offered else f"{i.value} (not offered)", i.value)
                for i in Interval
            ]
        )
        interval_select.value = default_interval(record, modes[0]) if record else "1d"

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "provider-select":
            value = event.value
            self._provider_chosen(value if isinstance(value, str) else None)
        elif event.select.id == "mode-select" and isinstance(event.value, str):
            self.query_one("#lookback-input", Input).disabled = event.value == "live"
        for field in event.select.ancestors:
            if isinstance(field, Field):
                field.clear()
                break

    async def submit(self) -> None:
        record = self.chosen_provider()
        if record is None:
            self.fail("sub-provider", "pick a provider (add one in the Providers mode)")
            return
        symbols = split_symbols(self.query_one("#symbols-input", Input).value)
        if not symbols:
            self.fail("sub-symbols", "type at least one symbol (separate several with spaces)")
        interval = str(self._select("interval-select").value)
        offered = offered_intervals(record)
        if interval not in offered:
            self.fail(
                "sub-interval",
                f"{record.name} does not offer {interval} bars; it offers: {' '.join(offered)}",
            )
        mode = str(self._select("mode-select").value)
        lookback = self._lookback(mode)
        if self.has_errors:
            return
        try:
            symbols = await self._provider_symbols(record.name, symbols)
            added = await self.services.subscriptions.add(
                record.name, symbols, interval, mode, lookback_days=lookback
            )
        except QuasarError as exc:
            self.fail("sub-symbols", str(exc))
            return
        self.dismiss(added)

    async def _provider_symbols(self, provider: str, typed: list[str]) -> list[str]:
        """The provider's symbols for what was typed: its own, or common symbols mapped to
        one of its assets. Raises for the first that is neither (close matches, else the Assets
        mode) or is no longer listed (the Providers mode refreshes), saying where to go."""
        mappings = await self.services.mappings.list(None, provider)
        mapped = {m.common_symbol.upper(): m.symbol for m in mappings}
        found = []
        app = cast("QuasarApp", self.app)
        for symbol in typed:
            try:
                asset = await self.services.assets.get(provider, symbol)
            except NotFoundError:
                if symbol.upper() in mapped:
                    found.append(mapped[symbol.upper()])
                    continue
            else:
                if not asset.active:
                    refresh = key_for(app, "providers.refresh_assets", "r")
                    raise InvalidInputError(
                        f"{provider} no longer lists {symbol}; refresh its assets in the "
                        f"Providers mode (key {key_for(app, 'mode.providers')}, then {refresh})"
                    )
                found.append(asset.symbol)
                continue
            matches = await close_matches(self.services.db, provider, symbol)
            hint = (
                f"did you mean {', '.join(matches)}?"
                if matches
                else f"look for it in the Assets mode (key {key_for(app, 'mode.assets')}: "
                "/ searches, s subscribes)"
            )
            raise NotFoundError(f"{provider} has no asset {symbol!r}; {hint}")
        return found

    def _lookback(self, mode: str) -> int:
        if mode == "live":
            return DEFAULT_LOOKBACK
        text = self.query_one("#lookback-input", Input).value.strip()
        if not text.isdigit() or int(text) <= 0:
            self.fail(
                "sub-lookback", f"lookback must be a whole number of days above 0, not {text!r}"
            )
            return DEFAULT_LOOKBACK
        return int(text)


def key_for(app: QuasarApp, binding_id: str, default: str | None = None) -> str:
    """The key of a binding as the user's keymap has it: remapped, else the app's own (the
    modes' keys), else `default`."""
    remapped = app.options.keymap.get(binding_id)
    if remapped:
        return remapped.split(",")[0].strip()
    own = (b.key for b in app.BINDINGS if isinstance(b, Binding) and b.id == binding_id)
    return next(own, default or "?")


async def open_subscribe(
    screen: ModeScreen,
    provider: str | None,
    symbols: Sequence[str],
    then: Callable[[list[SubscriptionRecord]], None] | None = None,
) -> None:
    """The subscribe form over `screen`; says what was added, then calls `then` with it."""
    try:
        providers = await screen.services.providers.list()
    except READ_ERRORS as exc:
        screen.notify(str(exc), severity="error")
        return

    def added(records: list[SubscriptionRecord] | None) -> None:
        if not records:
            return
        first = records[0]
        what = f"{len(records)} {first.provider} symbol{'s' if len(records) != 1 else ''}"
        screen.notify(f"subscribed {what} to {first.interval} {first.mode} bars")
        if then is not None:
            then(records)

    screen.app.push_screen(SubscribeModal(providers, provider, symbols), added)
