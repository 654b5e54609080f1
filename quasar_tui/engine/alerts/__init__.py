"""Alerts: rules evaluated on what the engine collects (evaluator.py over watches.py), fed from
the event bus (service.py) and delivered to the log, consoles, webhooks and commands
(delivery.py). Rules, states and history are stored by registry/alerts.py."""

from quasar_tui.engine.alerts.service import AlertService

__all__ = ["AlertService"]
