"""The Mappings mode's lists: unmapped symbols with their proposed common symbol (Enter
accepts), and the ranked alternatives for the highlighted one."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding

from quasar_tui.registry.suggestions import Suggestion
from quasar_tui.tui.widgets.marked_table import MarkedTable
from quasar_tui.tui.widgets.vim import VimOptionList

OBVIOUS = 0.8
"""Scores from here up (same FIGI, same symbol, same base/quote) are safe to accept in bulk."""

COLUMNS = ("Symbol", "Name", "Common", "Score", "Why")


def score_text(score: float) -> Text:
    style = "bold green" if score >= OBVIOUS else "yellow" if score >= 0.5 else "dim"
    return Text(f"{score:.2f}", style=style)


def proposal_cells(
    symbol: str, name: str | None, proposal: Suggestion | None
) -> tuple[object, ...]:
    if proposal is None:
        return (
            Text(symbol, style="bold"),
            name or "",
            Text("?", style="red"),
            "",
            Text("no suggestion: e types one", style="dim"),
        )
    common = Text(proposal.common_symbol, style="bold cyan")
    if proposal.is_new:
        common.append(" new", style="dim")
    return (
        Text(symbol, style="bold"),
        name or "",
        common,
        score_text(proposal.score),
        proposal.reason,
    )


def alternative_label(option: Suggestion) -> Text:
    text = Text()
    text.append(f"{option.common_symbol:<16}", style="bold cyan")
    text.append(" ")
    text.append_text(score_text(option.score))
    text.append(f"  {option.reason}", style="dim")
    return text


class SuggestionTable(MarkedTable):
    """Unmapped symbols; Enter accepts the row's proposal (posted as RowSelected)."""

    HELP_GROUP = "Unmapped symbols"
    BINDINGS = [
        Binding(
            "enter",
            "select_cursor",
            "Accept",
            tooltip="Map the symbol to its proposed common symbol",
            id="mappings.accept",
        )
    ]


class AlternativeList(VimOptionList):
    """Ranked suggestions for one symbol; moving picks one as the proposal, Enter accepts."""

    HELP_GROUP = "Suggestions"
    BINDINGS = [
        Binding(
            "enter",
            "select",
            "Accept this",
            tooltip="Map the symbol to this suggestion",
            id="mappings.accept_alternative",
        )
    ]
