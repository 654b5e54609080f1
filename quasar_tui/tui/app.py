"""The console app: modes, global keys, the engine feed and a clean exit when the terminal goes.

Widgets live in modes/, widgets/ and screens/, what the app changes of Textual's own behaviour
in app_base.py; this module only wires them together.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack

from textual import on, work
from textual.app import App
from textual.signal import Signal
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from quasar_tui.core.errors import QuasarError
from quasar_tui.registry.alerts import AlertStore
from quasar_tui.tui.app_base import ConsoleBase
from quasar_tui.tui.app_keys import APP_BINDINGS
from quasar_tui.tui.commands import ConsoleCommands
from quasar_tui.tui.keymap import keymap_warnings
from quasar_tui.tui.modals.price_alert import alert_here
from quasar_tui.tui.modes import MODES
from quasar_tui.tui.screens.help import show_help
from quasar_tui.tui.screens.stopping import StoppingScreen
from quasar_tui.tui.services import ConsoleOptions, Say, Services
from quasar_tui.tui.services.alerts import AlertInbox, toast_new_alerts
from quasar_tui.tui.services.feed import (
    EngineFeed,
    EngineLogged,
    EngineNews,
    EngineTakenOver,
    feed_stopped,
)
from quasar_tui.tui.services.log import ConsoleLog, ErrorToasts, LogEntry
from quasar_tui.tui.terminal import exit_with_terminal

_FEED = "engine-feed"
_START = "open-services"


class QuasarApp(ConsoleBase):
    """Quasar's console.

    `open_services` is entered by a worker started when the app mounts and exited when it
    unmounts (the engine stops and flushes). Not in `on_mount` itself: Textual paints nothing
    until that returns, and the user would stare at a blank terminal while the database and
    engine start. Until they have, the mode keys do nothing (the modes read the services).
    """

    CSS_PATH = "app.tcss"
    TITLE = "Quasar"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    BINDINGS = APP_BINDINGS

    services: Services
    alerts: AlertInbox
    modes = MODES

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
        self.log_entries = ConsoleLog(self.engine_log.publish, ErrorToasts(self._toast_error))
        for mode in MODES:
            self.add_mode(mode.name, mode.screen)
        if not self.options.animation:
            self.animation_level = "none"
        self._unwatch_terminal: Callable[[], None] | None = None
        self._started = False
        self._stopping = False
        self.chosen_provider: str | None = None
        """The provider last picked in a mode that works on one (Assets, Mappings)."""

    async def on_mount(self) -> None:
        self.log_entries.bridge_logging()
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
        self.log_entries.open(self.services.record)
        if self.options.keymap:
            self.set_keymap(self.options.keymap)
            for warning, timeout in keymap_warnings(self.options.keymap, self.options.keymap_path):
                self.notify(warning, severity="warning", timeout=timeout)
        self.alerts = AlertInbox(AlertStore(self.services.db, self.services.providers.keyring))
        self._update_engine_label()
        self.set_interval(1.0, self._update_engine_label)
        toast_new_alerts(self, self.alerts, self._update_engine_label)
        self._follow_engine(EngineFeed(self.services, self.post_message))
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

    async def close_services(self) -> None:
        """Stop the engine (if it runs here), close the database, release the server: what the
        exit does, for a quit to do while its screen shows it."""
        await self._resources.aclose()

    async def on_unmount(self) -> None:
        self.log_entries.unbridge_logging()
        if self._unwatch_terminal is not None:
            self._unwatch_terminal()
        await self._resources.aclose()

    @work(name=_FEED, group="engine", exit_on_error=False)
    async def _follow_engine(self, feed: EngineFeed) -> None:
        """The engine's news and ticks reach the screens for as long as the console runs."""
        await feed.run()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.name == _FEED and event.state == WorkerState.ERROR:
            self.log_entries.add(feed_stopped(event.worker.error))

    def _toast_error(self, message: str, source: str) -> None:
        self.notify(message, title=source, severity="error", timeout=8)

    @on(EngineLogged)
    def _engine_logged(self, message: EngineLogged) -> None:
        self.log_entries.add(message.entry)
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

    def action_alert_here(self) -> None:
        alert_here(self)

    def action_help(self) -> None:
        show_help(self)
