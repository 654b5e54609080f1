"""Mappings mode: a provider's unmapped symbols beside ranked suggestions, mapped by keyboard.

Enter accepts the highlighted row's proposal; moving in the suggestions pane (l, or Tab) picks
another one; `e` types a common symbol instead. Bulk: space marks rows, `t` marks every row
whose proposal is obvious (score >= OBVIOUS), `*` marks all shown, `a` accepts the marked, so a
hundred obvious symbols take `t a`. `v` shows the existing mappings (rename, delete).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import ContentSwitcher, DataTable, OptionList, Static
from textual.widgets.option_list import Option

from quasar_tui.core.clock import utc_now
from quasar_tui.registry.mappings import MappingRecord
from quasar_tui.registry.suggestions import MappingSuggester, Suggestion
from quasar_tui.tui.commands import command
from quasar_tui.tui.modals.confirm import Confirmed, ConfirmModal
from quasar_tui.tui.modals.edit_common import EditCommonModal, open_map
from quasar_tui.tui.modes.base import Mode
from quasar_tui.tui.modes.registry_base import Coalesced, ProviderScreen
from quasar_tui.tui.services.log import LogEntry
from quasar_tui.tui.services.reads import READ_ERRORS
from quasar_tui.tui.widgets.fitted_table import FittedTable
from quasar_tui.tui.widgets.mapping_list import (
    COLUMNS,
    OBVIOUS,
    AlternativeList,
    SuggestionTable,
    alternative_label,
    proposal_cells,
)
from quasar_tui.tui.widgets.provider_picker import ProviderPicker

SHOWN = 5000
ALTERNATIVES = 8
UNMAPPED_READ = 100_000
MOVE_PAUSE = 0.08
_VIEWS = {"unmapped": "unmapped-view", "mapped": "mapped-table"}
_UNMAPPED_ONLY = {"accept_marked", "mark_obvious", "edit", "focus_alternatives"}
_MAPPED_ONLY = {"rename", "delete"}
MAPPED_COLUMNS = ("Common", "Symbol", "Name", "Active", "Since")


@dataclass
class Unmapped:
    """One unmapped symbol and the common symbol proposed for it (None: nothing to propose)."""

    symbol: str
    name: str | None
    best: Suggestion | None
    proposal: Suggestion | None

    def matches(self, text: str) -> bool:
        common = self.proposal.common_symbol if self.proposal else ""
        return any(text in (v or "").lower() for v in (self.symbol, self.name, common))


def mapped_cells(m: MappingRecord) -> tuple[object, ...]:
    return (
        Text(m.common_symbol, style="bold cyan"),
        m.symbol,
        m.name or "",
        "yes" if m.active else Text("no", style="dim"),
        f"{m.created_at.astimezone(UTC):%Y-%m-%d}",
    )


class MappingsScreen(ProviderScreen):
    MODE_TITLE = "Mappings"
    HELP = (
        "Map each provider symbol to a common symbol, so the same instrument from two "
        "providers is one. Left: unmapped symbols with the best proposal; right: the ranked "
        "suggestions for the highlighted one. Enter accepts the proposal; l (or Tab) moves "
        "to the suggestions to pick another, h back; e types your own. In bulk: t marks "
        "the obvious ones, space marks one, * all shown, a accepts the marked. v shows the "
        "existing mappings (n renames a common symbol, d deletes a mapping)."
    )
    FILTER_ID = "mapping-filter"
    BINDINGS = [
        *ProviderScreen.PROVIDER_BINDINGS,
        Binding(
            "t",
            "mark_obvious",
            "Mark obvious",
            tooltip=f"Mark every shown row whose proposal scores {OBVIOUS:.2f} or more",
            id="mappings.mark_obvious",
        ),
        Binding(
            "a",
            "accept_marked",
            "Accept marked",
            tooltip="Accept the proposals of the marked rows",
            id="mappings.accept_marked",
        ),
        Binding(
            "e",
            "edit",
            "Edit",
            tooltip="Type the common symbol for the highlighted row",
            id="mappings.edit",
        ),
        Binding(
            "l",
            "focus_alternatives",
            "Suggestions",
            show=False,
            tooltip="Go to the suggestions pane (moving there picks one)",
            id="mappings.suggestions",
        ),
        Binding(
            "h",
            "focus_list",
            "Symbols",
            show=False,
            tooltip="Back to the unmapped symbols",
            id="mappings.symbols",
        ),
        Binding(
            "v",
            "toggle_view",
            "Mapped",
            tooltip="Show the mappings, or the unmapped",
            id="mappings.toggle_view",
        ),
        Binding(
            "n",
            "rename",
            "Rename",
            tooltip="Rename the common symbol (mappings view)",
            id="mappings.rename",
        ),
        Binding(
            "d,delete",
            "delete",
            "Delete",
            tooltip="Delete the mapping (asks first)",
            id="mappings.delete",
        ),
        Binding(
            "r",
            "reload",
            "Reload",
            show=False,
            tooltip="Score the unmapped symbols again",
            id="mappings.reload",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.view = "unmapped"
        self.unmapped: dict[str, Unmapped] = {}
        self.mapped: list[MappingRecord] = []
        self.alternatives: list[Suggestion] = []
        self.alternatives_for: str | None = None
        self._pane = Coalesced(self, "suggestions", self._load_alternatives)

    def compose_body(self) -> ComposeResult:
        with Horizontal(classes="mode-top"):
            yield ProviderPicker(id="provider")
            yield self.filter_input("filter symbols and names (Esc clears)")
        with ContentSwitcher(initial="unmapped-view", id="mapping-views"):
            with Horizontal(id="unmapped-view"):
                yield SuggestionTable(COLUMNS, id="unmapped-table", drop_first=("Name",))
                with Vertical(id="alternatives-pane"):
                    yield Static("Suggestions", id="alternatives-title")
                    yield AlternativeList(id="alternatives")
            yield FittedTable(
                MAPPED_COLUMNS, drop_first=("Name", "Since"), id="mapped-table", zebra_stripes=True
            )
        yield self.status_line()

    # -- widgets and view ------------------------------------------------------------------

    @property
    def table(self) -> SuggestionTable:
        return self.query_one("#unmapped-table", SuggestionTable)

    @property
    def mapped_table(self) -> FittedTable:
        return self.query_one("#mapped-table", FittedTable)

    def focus_list(self) -> None:
        (self.table if self.view == "unmapped" else self.mapped_table).focus()

    def action_focus_list(self) -> None:
        self.focus_list()

    def action_focus_alternatives(self) -> None:
        self.query_one(AlternativeList).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in _UNMAPPED_ONLY:
            return self.view == "unmapped"
        if action in _MAPPED_ONLY:
            return self.view == "mapped"
        return True

    def action_toggle_view(self) -> None:
        self.view = "mapped" if self.view == "unmapped" else "unmapped"
        self.query_one(ContentSwitcher).current = _VIEWS[self.view]
        self.refresh_bindings()
        self._show_rows()
        self.focus_list()

    def action_reload(self) -> None:
        self.request_load()

    # -- loading ---------------------------------------------------------------------------

    async def load(self) -> None:
        provider = self.provider
        if provider is None:
            self.unmapped, self.mapped = {}, []
            self._show_rows()
            return
        try:
            best = await MappingSuggester(self.services.db).suggest(provider)
            assets = await self.services.mappings.unmapped(provider, limit=UNMAPPED_READ)
            mapped = await self.services.mappings.list(provider=provider)
        except READ_ERRORS as exc:
            self.show_status(f"cannot read the mappings of {provider}: {exc}")
            return
        if provider != self.provider:
            return
        previous = self.unmapped
        rows: dict[str, Unmapped] = {}
        for s in best:
            kept = previous.get(s.symbol)
            pick = kept.proposal if kept and kept.proposal and kept.proposal != kept.best else s
            rows[s.symbol] = Unmapped(s.symbol, s.name, s, pick)
        for a in assets:
            rows.setdefault(a.symbol, Unmapped(a.symbol, a.name, None, None))
        self.unmapped, self.mapped = rows, mapped
        self.table.keep_marks(rows)
        self._show_rows()
        self._pane.request()  # the scores may have changed even where the cursor stayed

    def _show_rows(self) -> None:
        text = self.filter_text
        if self.view == "unmapped":
            shown = [u for u in self.unmapped.values() if not text or u.matches(text)][:SHOWN]
            self.table.set_rows(
                (u.symbol, proposal_cells(u.symbol, u.name, u.proposal)) for u in shown
            )
            self._highlight_changed()
        else:
            table = self.mapped_table
            keep, at = table.cursor_key, table.cursor_row
            table.show_rows(
                [
                    (m.symbol, mapped_cells(m))
                    for m in self.mapped
                    if not text
                    or any(text in (v or "").lower() for v in (m.common_symbol, m.symbol, m.name))
                ]
            )
            if table.row_count and not table.move_to_key(keep):
                table.move_cursor(row=min(at, table.row_count - 1), animate=False)
        self._update_status()

    def apply_filter(self) -> None:
        self._show_rows()

    def _update_status(self) -> None:
        if self.provider is None:
            self.show_status("No providers yet: add one in the Providers mode (2).")
            return
        if self.view == "mapped":
            self.show_status(
                f"{self.provider}: {len(self.mapped):,} mappings · "
                f"{len(self.unmapped):,} unmapped (v)"
            )
            return
        if not self.unmapped:
            record = self.provider_records.get(self.provider)
            if record is not None and not record.asset_count:
                self.show_status(
                    f"{self.provider} lists no assets yet: refresh them in the "
                    "Providers mode (2, then r)"
                )
            else:
                self.show_status(
                    f"{self.provider}: every listed symbol is mapped "
                    f"({len(self.mapped):,}) · v shows the mappings"
                )
            return
        table = self.table
        obvious = sum(
            1 for u in self.unmapped.values() if u.proposal and u.proposal.score >= OBVIOUS
        )
        hidden = f" ({table.hidden_marks} hidden by the filter)" if table.hidden_marks else ""
        shown = len(table.keys)
        cut = f", {shown:,} shown" if shown < len(self.unmapped) else ""
        self.show_status(
            f"{self.provider}: {len(self.unmapped):,} unmapped{cut} · {len(table.marks):,} "
            f"marked{hidden} · {obvious:,} obvious (score ≥ {OBVIOUS:.2f}, t marks them) · "
            f"* marks all shown · {len(self.mapped):,} mapped (v)"
        )

    def on_marked_table_marks_changed(self, event: SuggestionTable.MarksChanged) -> None:
        self._update_status()

    # -- the suggestions pane ----------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table is self.table:
            self._highlight_changed()

    def _highlight_changed(self) -> None:
        if self.table.cursor_key != self.alternatives_for:
            self._pane.request(MOVE_PAUSE)

    async def _load_alternatives(self) -> None:
        symbol, provider = self.table.cursor_key, self.provider
        options: list[Suggestion] = []
        if symbol is not None and provider is not None:
            try:
                options = await MappingSuggester(self.services.db).alternatives(
                    provider, symbol, ALTERNATIVES
                )
            except READ_ERRORS as exc:
                self.report_error(str(exc))
                return
        self.alternatives, self.alternatives_for = options, symbol
        row = self.unmapped.get(symbol) if symbol else None
        if row and row.proposal and row.proposal not in options:
            options.insert(0, row.proposal)
        pane = self.query_one(AlternativeList)
        with pane.prevent(OptionList.OptionHighlighted):
            pane.clear_options()
            pane.add_options(Option(alternative_label(o)) for o in options)
            if row and row.proposal in options:
                pane.highlighted = options.index(row.proposal)
        self.query_one("#alternatives-title", Static).update(
            f"Suggestions for {symbol}" if symbol else "Suggestions"
        )

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        """Moving in the suggestions pane makes that one the row's proposal."""
        symbol = self.alternatives_for
        row = self.unmapped.get(symbol) if symbol else None
        if (
            not isinstance(event.option_list, AlternativeList)
            or row is None
            or event.option_index >= len(self.alternatives)
        ):
            return
        row.proposal = self.alternatives[event.option_index]
        if symbol in self.table.keys:
            self.table.set_cells(symbol, proposal_cells(row.symbol, row.name, row.proposal))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if isinstance(event.option_list, AlternativeList) and event.option_index < len(
            self.alternatives
        ):
            self.run_task("accept", self._accept, [self.alternatives[event.option_index]])

    # -- accepting ---------------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.data_table is self.table:
            self.action_accept()

    def action_accept(self) -> None:
        symbol = self.table.cursor_key
        row = self.unmapped.get(symbol) if symbol else None
        if row is None:
            return
        if row.proposal is None:
            self.notify(
                f"nothing to propose for {row.symbol}: press e to type a common symbol",
                severity="warning",
            )
            return
        self.run_task("accept", self._accept, [row.proposal])

    def action_accept_marked(self) -> None:
        marked = [self.unmapped[s] for s in self.table.marks if s in self.unmapped]
        if not marked:
            self.notify(
                "nothing marked: space marks a row, t marks the obvious ones, * all",
                severity="warning",
            )
            return
        ready = [u.proposal for u in marked if u.proposal is not None]
        if len(ready) < len(marked):
            self.notify(
                f"{len(marked) - len(ready)} marked symbols have no proposal: e types one",
                severity="warning",
            )
        if ready:
            self.run_task("accept", self._accept, ready)

    def action_mark_obvious(self) -> None:
        before = len(self.table.marks)
        after = self.table.mark_where(
            lambda s: (p := self.unmapped[s].proposal) is not None and p.score >= OBVIOUS
        )
        if after == before:
            self.notify(f"no other shown row scores {OBVIOUS:.2f} or more; * marks every row shown")
        else:
            self.notify(f"marked {after - before} obvious ones; a accepts the {after} marked")

    async def _accept(self, chosen: list[Suggestion]) -> None:
        skipped: list[tuple[Suggestion, str]] = []
        try:
            count = await MappingSuggester(self.services.db).accept(
                chosen, on_skip=lambda s, why: skipped.append((s, why))
            )
        except READ_ERRORS as exc:
            self.report_error(str(exc))
            return
        if count:
            what = (
                f"{chosen[0].provider}:{chosen[0].symbol} to {chosen[0].common_symbol}"
                if len(chosen) == 1
                else f"{count:,} symbols"
            )
            self.notify(f"mapped {what}")
        for _skipped, why in skipped:
            self.quasar.log_entries.add(
                LogEntry(utc_now(), "warning", "mappings", f"not mapped: {why}"),
                notify=False,
            )
        if skipped:
            more = f" (and {len(skipped) - 1} more: see the Log)" if len(skipped) > 1 else ""
            self.notify(f"not mapped: {skipped[0][1]}{more}", severity="warning", timeout=10)
        done = {s.symbol for s in chosen} - {s.symbol for s, _ in skipped}
        self.table.set_marks(self.table.marks - done)
        self._drop_mapped(done)
        self.request_load()

    def _drop_mapped(self, symbols: set[str]) -> None:
        """The rows just mapped leave the list, and the pane moves to the row now under the
        cursor, at once: the reload (scores of the others) comes later."""
        for symbol in symbols:
            self.unmapped.pop(symbol, None)
        self._show_rows()
        if self.alternatives_for in symbols:
            self.alternatives, self.alternatives_for = [], None
            self.query_one(AlternativeList).clear_options()
            self.query_one("#alternatives-title", Static).update("Suggestions")
            self._pane.request()

    def action_edit(self) -> None:
        symbol = self.table.cursor_key
        row = self.unmapped.get(symbol) if symbol else None
        provider = self.provider
        if row is None or provider is None:
            return

        def mapped() -> None:
            self.table.set_marks(self.table.marks - {row.symbol})
            self.request_load()

        initial = row.proposal.common_symbol if row.proposal else row.symbol.upper()
        open_map(self, self.services.mappings, provider, row.symbol, row.name, initial, mapped)

    # -- existing mappings -------------------------------------------------------------------

    def _selected_mapping(self) -> MappingRecord | None:
        symbol = self.mapped_table.cursor_key
        return next((m for m in self.mapped if m.symbol == symbol), None)

    def action_rename(self) -> None:
        mapping = self._selected_mapping()
        if mapping is None:
            return
        mappings = self.services.mappings
        old = mapping.common_symbol

        async def save(new: str) -> str:
            moved = await mappings.rename(old, new)
            return f"renamed {old} to {new} ({moved} mapping{'s' if moved != 1 else ''})"

        def done(message: str | None) -> None:
            if message:
                self.notify(message)
                self.request_load()

        self.app.push_screen(
            EditCommonModal(
                f"Rename common symbol {old}", "every provider's mapping follows", old, save
            ),
            done,
        )

    def action_delete(self) -> None:
        mapping = self._selected_mapping()
        if mapping is None:
            return

        def confirmed(answer: Confirmed | None) -> None:
            if answer is not None:
                self.run_task("delete mapping", self._delete, mapping)

        self.app.push_screen(
            ConfirmModal(
                f"Delete the mapping {mapping.provider}:{mapping.symbol} → "
                f"{mapping.common_symbol}?",
                ["The asset stays; it shows as unmapped again."],
            ),
            confirmed,
        )

    async def _delete(self, mapping: MappingRecord) -> None:
        try:
            await self.services.mappings.delete(mapping.provider, mapping.symbol)
        except READ_ERRORS as exc:
            self.report_error(str(exc))
            return
        self.notify(f"deleted the mapping of {mapping.provider}:{mapping.symbol}")
        self.request_load()


MODE = Mode(
    "mappings",
    "Mappings",
    4,
    MappingsScreen,
    "map provider symbols to common symbols with ranked suggestions",
    short="Maps",
)

command(
    "mapping: accept",
    "Accept the highlighted symbol's proposal",
    "accept",
    mode="mappings",
    on_row=True,
)
command(
    "mapping: accept marked",
    "Accept the proposals of every marked symbol",
    "accept_marked",
    mode="mappings",
    on_row=True,
)
command(
    "mapping: mark obvious",
    f"Mark every shown symbol scoring {OBVIOUS:.2f} or more",
    "mark_obvious",
    mode="mappings",
)
command(
    "mapping: edit common symbol",
    "Type the common symbol for the highlighted symbol",
    "edit",
    mode="mappings",
    on_row=True,
)
command("mapping: filter", "Filter the symbols shown", "filter", mode="mappings")
command(
    "mapping: show mapped or unmapped",
    "Switch between unmapped symbols and mappings",
    "toggle_view",
    mode="mappings",
)
command(
    "mapping: rename common symbol",
    "Rename the selected mapping's common symbol",
    "rename",
    mode="mappings",
    on_row=True,
)
command(
    "mapping: delete",
    "Delete the selected mapping (asks first)",
    "delete",
    mode="mappings",
    on_row=True,
)
command("mapping: reload", "Score the unmapped symbols again", "reload", mode="mappings")
command(
    "mapping: pick provider",
    "Map the symbols of another provider",
    "pick_provider",
    mode="mappings",
)
