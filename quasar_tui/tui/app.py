"""The console app: modes, global keys, the engine feed and a clean exit when the terminal goes.

Widgets live in modes/, widgets/ and screens/; this module only wires them together.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from datetime import datetime
from functools import partial
from pathlib import Path
from time import monotonic

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.signal import Signal
from textual.widget import AwaitMount
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from quasar_tui.core.clock import utc_now
from quasar_tui.core.errors import QuasarError
from quasar_tui.core.text import printable
from quasar_tui.engine.states import DB_ERRORS
from quasar_tui.registry.alerts import AlertRule, AlertStore
from quasar_tui.tui.commands import ConsoleCommands, command, system_commands
from quasar_tui.tui.keymap import conflicts, unknown_ids
from quasar_tui.tui.modals.price_alert import PriceAlertModal, price_here
from quasar_tui.tui.modes import MODES
from quasar_tui.tui.screens.help import HelpScreen, screen_bindings
from quasar_tui.tui.screens.stopping import StoppingScreen
from quasar_tui.tui.screenshot import default_name, save_svg
from quasar_tui.tui.services import ConsoleOptions, Say, Services
from quasar_tui.tui.services.alerts import AlertInbox
from quasar_tui.tui.services.feed import EngineFeed, EngineLogged, EngineNews, EngineTakenOver
from quasar_tui.tui.services.log import LogEntry, LogRecordBridge
from quasar_tui.tui.terminal import TerminalDriver, exit_with_terminal

NOTIFY_GAP = 2.0
_FEED = "engine-feed"
_START = "open-services"

for _mode in MODES:
    command(f"mode: {_mode.name}", f"{_mode.title}: {_mode.help}", f"switch_mode('{_mode.name}')")
command("app: help", "Show the keys of the current screen", "help")
command("app: quit", "Quit the console (the engine stops if it runs here)", "quit")
command(
    "alert: at this price",
    "A price alert for the Live row or the Chart bar under the cursor",
    "alert_here",
)


class QuasarApp(App[int]):
    """Quasar's console.

    `open_services` is entered by a worker started when the app mounts and exited when it
    unmounts (the engine stops and flushes). Not in `on_mount` itself: Textual paints nothing
    until that returns, and the user would stare at a blank terminal while the database and
    engine start. Until they have, the mode keys do nothing (the modes read the services).
    """

    CSS_PATH = "app.tcss"
    TITLE = "Quasar"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    BINDINGS = [
        *(
            Binding(
                mode.key,
                f"app.switch_mode('{mode.name}')",
                mode.title,
                show=False,
                tooltip=f"{mode.title}: {mode.help}",
                id=f"mode.{mode.name}",
            )
            for mode in MODES
        ),
        Binding(
            "question_mark",
            "app.help",
            "Help",
            tooltip="What this screen is for, and all its keys",
            id="app.help",
        ),
        Binding(
            "ctrl+p", "app.command_palette", "Commands", show=False, priority=True, id="app.palette"
        ),
        Binding("colon", "app.command_palette", "Commands", show=False, id="app.palette_colon"),
        Binding(
            "A",
            "app.alert_here",
            "Alert here",
            show=False,
            tooltip="Live or Chart: an alert when the price crosses the one under the cursor",
            id="app.alert_here",
        ),
        Binding(
            "q",
            "app.quit",
            "Quit",
            tooltip="Quit (an engine running here stops first)",
            id="app.quit",
        ),
    ]

    services: Services
    alerts: AlertInbox
    modes = MODES

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Toasts carry provider names and errors: shown escaped and never read as markup,
        whatever a caller (Widget.notify passes markup=True) asks."""
        super().notify(
            printable(message),
            title=printable(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    def __init__(
        self,
        open_services: Callable[[Say], AbstractAsyncContextManager[Services]],
        options: ConsoleOptions | None = None,
    ) -> None:
        super().__init__()
        self._open_services = open_services
        self._resources = AsyncExitStack()
        self.options = options or ConsoleOptions()
        self.engine_log: Signal[LogEntry] = Signal(self, "engine-log")
        for mode in MODES:
            self.add_mode(mode.name, mode.screen)
        if not self.options.animation:
            self.animation_level = "none"
        self._last_notice = 0.0
        self._held_errors = 0
        self._bridge: LogRecordBridge | None = None
        self._early: list[LogEntry] | None = []
        self._unwatch_terminal: Callable[[], None] | None = None
        self._started = False
        self._stopping = False
        self._shown_modes: set[str] = set()
        self._hold_frames = True
        self.chosen_provider: str | None = None
        """The provider last picked in a mode that works on one (Assets, Mappings)."""

    async def on_mount(self) -> None:
        self._install_log_bridge()
        await self.screen.mount(Static("Opening the database...", id="starting"))
        self._start()

    def _say(self, words: str) -> None:
        """What the start (attaching or starting) or the stop does now, on its screen."""
        if not self.screen_stack:  # an exit (the terminal went) closed them: no one to tell
            return
        for shown in self.screen.query("#starting, #stopping").results(Static):
            shown.update(words)

    @work(name=_START, group="start")
    async def _start(self) -> None:
        try:
            self.services = await self._resources.enter_async_context(
                self._open_services(self._say)
            )
        except QuasarError as exc:
            self.exit(None, 1, f"quasar: error: {exc}")
            return
        for entry in self._early or ():
            self.services.record(entry)
        self._early = None
        if self.options.keymap:
            self.set_keymap(self.options.keymap)
            if unknown := unknown_ids(self.options.keymap):
                self.notify(
                    f"{self.options.keymap_path}: no binding with id {', '.join(unknown)}; "
                    "press ? to see the ids",
                    severity="warning",
                    timeout=10,
                )
            for clash in conflicts(self.options.keymap):
                self.notify(f"{self.options.keymap_path}: {clash}", severity="warning", timeout=15)
        self.alerts = AlertInbox(AlertStore(self.services.db, self.services.providers.keyring))
        self._update_engine_label()
        self.set_interval(1.0, self._update_engine_label)
        self.set_interval(1.0, self._check_alerts)
        feed = EngineFeed(self.services, self.post_message)
        self._follow_engine(feed)
        if not self.is_headless:
            self._unwatch_terminal = exit_with_terminal(self)
        self._started = True
        await self.switch_mode(MODES[0].name)

    async def action_switch_mode(self, mode: str) -> None:
        if self._started:
            await super().action_switch_mode(mode)

    async def action_quit(self) -> None:
        """An engine running here stops first, its progress on the screen; then the exit.
        Quitting again meanwhile changes nothing (the stop must finish)."""
        if self._stopping:
            return
        if not self._started or not self.services.engine_running_here:
            self.exit()
            return
        self._started, self._stopping = False, True  # no mode switch from here on
        await self.push_screen(StoppingScreen(self.services, self.close_services))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's palette entries, named like the console's ("view: theme")."""
        return system_commands(iter(super().get_system_commands(screen)))

    def get_driver_class(self) -> type[Driver]:
        driver = super().get_driver_class()
        return TerminalDriver if driver is LinuxDriver else driver

    def switch_mode(self, mode: str) -> AwaitMount:
        """Textual holds every frame for 50 ms on a mode switch (`delay_update`), to hide a
        screen being built. A mode's screen stays installed once built, so only the first
        switch to a mode is held: the others show at once."""
        self._hold_frames = mode not in self._shown_modes
        try:
            waiter = super().switch_mode(mode)
        finally:
            self._hold_frames = True
        self._shown_modes.add(mode)
        return waiter

    def delay_update(self, delay: float = 0.05) -> None:
        if self._hold_frames:
            super().delay_update(delay)

    async def close_services(self) -> None:
        """Stop the engine (if it runs here), close the database, release the server: what the
        exit does, for a quit to do while its screen shows it."""
        await self._resources.aclose()

    async def on_unmount(self) -> None:
        if self._bridge is not None:
            logging.getLogger().removeHandler(self._bridge)
            self._bridge = None
        if self._unwatch_terminal is not None:
            self._unwatch_terminal()
        await self._resources.aclose()

    def publish_log(self, entry: LogEntry, notify: bool = True) -> None:
        """Every engine event or log line goes to the Log mode; engine errors also notify
        (log records do not: the engine reports what the user must see as events)."""
        if self._early is None:
            self.services.record(entry)
        else:
            self._early.append(entry)
        self.engine_log.publish(entry)
        if notify and entry.level == "error":
            self._notify_error(entry)

    @work(name=_FEED, group="engine", exit_on_error=False)
    async def _follow_engine(self, feed: EngineFeed) -> None:
        """The engine's news and ticks reach the screens for as long as the console runs."""
        await feed.run()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The feed never ends by itself; if a bug ends it, say so rather than go quiet."""
        worker = event.worker
        if worker.name == _FEED and event.state == WorkerState.ERROR:
            self.publish_log(
                LogEntry(
                    utc_now(),
                    "error",
                    "console",
                    f"live data stopped ({type(worker.error).__name__}: {worker.error}); "
                    "restart the console",
                )
            )

    def _notify_error(self, entry: LogEntry) -> None:
        now = monotonic()
        if now - self._last_notice < NOTIFY_GAP:
            self._held_errors += 1
            return
        more = f" (+{self._held_errors} more in the Log)" if self._held_errors else ""
        self._held_errors = 0
        self._last_notice = now
        self.notify(f"{entry.message}{more}", title=entry.source, severity="error", timeout=8)

    @on(EngineLogged)
    def _engine_logged(self, message: EngineLogged) -> None:
        self.publish_log(message.entry)
        if self._started:
            self.screen.post_message(EngineNews(message.entry))

    @on(EngineTakenOver)
    def _engine_taken_over(self) -> None:
        self.notify(
            "the engine this console was attached to stopped; this console runs the engine now",
            title="engine taken over",
            severity="warning",
            timeout=10,
        )
        self._update_engine_label()

    def _update_engine_label(self) -> None:
        """Who runs the engine, in the header: refreshed every second (the owner's figures
        change), and at once on a takeover; unread alerts beside it."""
        unread = self.alerts.label
        self.sub_title = self.services.view.label + (f" · {unread}" if unread else "")

    @work(exclusive=True, group="alerts", exit_on_error=False)
    async def _check_alerts(self) -> None:
        """New alerts pop up with the terminal bell, from this engine or a daemon's."""
        try:
            fresh = await self.alerts.poll()
        except DB_ERRORS:
            return  # the engine feed reports a database that is away
        if self.current_mode == "alerts":
            self.alerts.mark_read()
        for entry in fresh[-3:]:
            self.notify(entry.message, title="alert", severity="warning", timeout=10)
        if fresh:
            self.bell()
            self._update_engine_label()

    def _install_log_bridge(self) -> None:
        """Log records go to the Log mode: nothing may print over a full-screen app."""
        self._bridge = LogRecordBridge(
            partial(self.publish_log, notify=False), asyncio.get_running_loop()
        )
        logging.getLogger().addHandler(self._bridge)

    def action_alert_here(self) -> None:
        point = price_here(self.screen)
        if point is None:
            self.notify(
                "put the cursor on a series in Live or on a bar in Chart first",
                title="alert at this price",
                severity="warning",
                timeout=5,
            )
            return

        def added(rule: AlertRule | None) -> None:
            if rule is not None:
                self.notify(f"alert rule {rule.id}: {rule.target} {rule.condition}", timeout=5)

        self.push_screen(PriceAlertModal(point), added)

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        """Save to Downloads or the current directory (or `path`), and say where or why not
        (`time_format` is Textual's, unused: the name is `default_name`'s)."""
        saved = save_svg(
            self.export_screenshot(),
            filename or default_name(datetime.now()),
            Path(path) if path else None,
        )
        if saved.path is None:
            self.notify(f"not saved: {saved.problem}", title="Screenshot", severity="error")
        else:
            self.notify(f"saved to {saved.path}", title="Screenshot")
        return None

    def action_help(self) -> None:
        screen = self.screen
        if isinstance(screen, HelpScreen):
            return
        self.push_screen(
            HelpScreen(
                screen_bindings(screen), screen.title or "Quasar", getattr(screen, "HELP", "")
            )
        )
