"""How tests and benchmarks start `quasar` in a subprocess on an accelerated clock."""

# A provider host on the same accelerated clock: its environment is scrubbed, so the anchor and
# speed come in its argv, ahead of the host's own arguments.
HOST_LAUNCHER = """
import sys, time
anchor, speed = float(sys.argv[1]), float(sys.argv[2])
real = time.time
time.time = lambda: anchor + (real() - anchor) * speed
from quasar_tui.sandbox.host import main
main(sys.argv[3:])
"""

# Runs the real CLI entry point. With QUASAR_TEST_SPEED it runs market time fast (the clock the
# engine and the simulated provider, in its host, read; anchored so a restarted daemon
# continues the same timeline); with QUASAR_TEST_MODULES it writes the modules it loaded when it
# exits.
LAUNCHER = (
    "HOST_LAUNCHER = "
    + repr(HOST_LAUNCHER)
    + """
import atexit, json, os, sys, time
from datetime import UTC, datetime

speed = float(os.environ.get("QUASAR_TEST_SPEED", "1"))
if speed != 1:
    anchor, real = float(os.environ["QUASAR_TEST_ANCHOR"]), time.time
    time.time = lambda: anchor + (real() - anchor) * speed
    import quasar_tui.engine.engine as engine_module
    engine_module.utc_now = lambda: datetime.fromtimestamp(time.time(), UTC)
    import quasar_tui.sandbox.client as host_client
    host_argv = host_client.ProviderHost._argv

    def fast_host_argv(self, fd):
        args = host_argv(self, fd)
        at = args.index("-m")
        return [*args[:at], "-c", HOST_LAUNCHER, str(anchor), str(speed), *args[at + 2 :]]

    host_client.ProviderHost._argv = fast_host_argv
modules = os.environ.get("QUASAR_TEST_MODULES")
if modules:
    atexit.register(lambda: open(modules, "w").write(json.dumps(sorted(sys.modules))))
from quasar_tui.cli import main
sys.exit(main(sys.argv[1:]))
"""
)
