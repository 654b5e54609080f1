"""The collector engine: scheduler, historical jobs, live sessions, aggregation, writer, event bus.

Never imports Textual: the daemon runs it headless and the console drives it through its Python
API and the event bus.
"""
