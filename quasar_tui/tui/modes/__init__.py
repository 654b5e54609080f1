"""The console's modes, registered here and only here.

A mode is one module exposing `MODE = Mode(name, title, slot, ScreenClass, help)`; listing it in
`_REGISTERED` gives it its number key, a "mode: NAME" palette entry and a place in the help.
Slots follow the design's order: 1 Dashboard, 2 Providers, 3 Assets, 4 Mappings,
5 Subscriptions, 6 Live, 7 Chart, 8 Log, 9 Quality, 10 (key 0) Alerts.
"""

from __future__ import annotations

from quasar_tui.tui.modes import (
    alerts,
    assets,
    chart,
    dashboard,
    live,
    log,
    mappings,
    providers,
    quality,
    subscriptions,
)
from quasar_tui.tui.modes.base import Mode

_REGISTERED: tuple[Mode, ...] = (
    dashboard.MODE,
    providers.MODE,
    assets.MODE,
    mappings.MODE,
    subscriptions.MODE,
    live.MODE,
    chart.MODE,
    log.MODE,
    quality.MODE,
    alerts.MODE,
)


def _ordered(modes: tuple[Mode, ...]) -> tuple[Mode, ...]:
    slots = [m.slot for m in modes]
    if len(set(slots)) != len(slots) or len({m.name for m in modes}) != len(modes):
        raise RuntimeError(f"two console modes share a number key or name: {modes}")
    return tuple(sorted(modes, key=lambda m: m.slot))


MODES = _ordered(_REGISTERED)
