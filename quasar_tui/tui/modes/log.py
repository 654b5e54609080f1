"""Log mode: engine events and warnings as they happen, filterable by text and level."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding

from quasar_tui.core.text import printable
from quasar_tui.tui.commands import command
from quasar_tui.tui.modes.base import FilterableScreen, Mode
from quasar_tui.tui.services import LOG_KEPT
from quasar_tui.tui.services.log import LogEntry
from quasar_tui.tui.widgets.vim import VimLog

LEVELS = ("info", "warning", "error")
REDRAW_KEPT = 1000
_LEVEL_STYLES = {"info": "", "warning": "yellow", "error": "bold red"}


def format_entry(entry: LogEntry) -> Text:
    text = Text(no_wrap=False)
    text.append(f"{entry.at:%Y-%m-%d %H:%M:%S} ", style="dim")
    text.append(f"{entry.level.upper():<7} ", style=_LEVEL_STYLES.get(entry.level, ""))
    text.append(f"{printable(entry.source)}: ", style="bold")
    text.append(printable(entry.message), style=_LEVEL_STYLES.get(entry.level, ""))
    return text


class LogScreen(FilterableScreen):
    MODE_TITLE = "Log"
    HELP = (
        "What the engine and the console report, newest last: job runs, provider "
        "connections, warnings and errors (errors also pop up as notifications). a shows "
        "everything, w warnings and errors, e errors only; / filters by text; f stops or "
        "resumes following new lines."
    )
    BINDINGS = [
        Binding("a", "level('info')", "All", tooltip="Show every line", id="log.all"),
        Binding(
            "w",
            "level('warning')",
            "Warnings",
            tooltip="Show warnings and errors",
            id="log.warnings",
        ),
        Binding("e", "level('error')", "Errors", tooltip="Show errors only", id="log.errors"),
        Binding(
            "f", "follow", "Follow", tooltip="Stop or resume following new lines", id="log.follow"
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.min_level = "info"
        self.follow = True
        self._shown = 0

    def compose_body(self) -> ComposeResult:
        yield self.filter_input("filter the log (Enter keeps it, Esc clears)")
        yield VimLog(id="log", max_lines=LOG_KEPT, wrap=True, markup=False, auto_scroll=True)
        yield self.status_line()

    def on_mount(self) -> None:
        self.quasar.engine_log.subscribe(self, self._append)
        self.query_one(VimLog).focus()
        self._redraw()

    def matches(self, entry: LogEntry) -> bool:
        if LEVELS.index(entry.level if entry.level in LEVELS else "info") < LEVELS.index(
            self.min_level
        ):
            return False
        needle = self.filter_text
        return not needle or needle in entry.message.lower() or needle in entry.source.lower()

    def _append(self, entry: LogEntry) -> None:
        if self.matches(entry):
            self._shown += 1
            self.query_one(VimLog).write(format_entry(entry), scroll_end=self.follow)
            self._update_status()

    def _redraw(self) -> None:
        log = self.query_one(VimLog)
        log.clear()
        shown = [e for e in self.services.log if self.matches(e)]
        for entry in shown[-REDRAW_KEPT:]:
            log.write(format_entry(entry), scroll_end=False)
        log.scroll_end(animate=False)
        self._shown = len(shown)
        self._update_status()

    def _update_status(self) -> None:
        flt = f", text {self.filter_text!r}" if self.filter_text else ""
        follow = "following" if self.follow else "paused (f follows)"
        self.show_status(
            f"{self._shown} of {len(self.services.log)} entries, level >= "
            f"{self.min_level}{flt}, {follow}"
        )

    def apply_filter(self) -> None:
        self._redraw()

    def focus_list(self) -> None:
        self.query_one(VimLog).focus()

    def action_level(self, level: str) -> None:
        self.min_level = level
        self._redraw()

    def action_follow(self) -> None:
        self.follow = not self.follow
        log = self.query_one(VimLog)
        log.auto_scroll = self.follow
        self._redraw()


MODE = Mode("log", "Log", 8, LogScreen, "engine events, warnings and errors")

command("log: errors only", "Show only errors in the Log", "level('error')", mode="log")
command("log: warnings and errors", "Hide info lines in the Log", "level('warning')", mode="log")
command("log: everything", "Show every Log line", "level('info')", mode="log")
command("log: filter", "Filter the Log by text", "filter", mode="log")
