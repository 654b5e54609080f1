"""How tests and benchmarks start `quasar` in a subprocess on an accelerated clock."""

# Runs the real CLI entry point. With QUASAR_TEST_SPEED it runs market time fast (the clock the
# engine and the simulated provider read, anchored so a restarted daemon continues the same
# timeline); with QUASAR_TEST_MODULES it writes the modules it loaded when it exits.
LAUNCHER = """
import atexit, json, os, sys, time
from datetime import UTC, datetime

speed = float(os.environ.get("QUASAR_TEST_SPEED", "1"))
if speed != 1:
    anchor, real = float(os.environ["QUASAR_TEST_ANCHOR"]), time.time
    time.time = lambda: anchor + (real() - anchor) * speed
    import quasar_tui.engine.engine as engine_module
    engine_module.utc_now = lambda: datetime.fromtimestamp(time.time(), UTC)
modules = os.environ.get("QUASAR_TEST_MODULES")
if modules:
    atexit.register(lambda: open(modules, "w").write(json.dumps(sorted(sys.modules))))
from quasar_tui.cli import main
sys.exit(main(sys.argv[1:]))
"""
