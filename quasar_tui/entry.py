"""The `quasar` command's entry point: paint "opening..." for a console start, then load the
CLI (its imports alone take a second on a busy machine, with nothing on the screen)."""

from __future__ import annotations

import sys

from quasar_tui import opening


def main() -> int:
    opening.paint(sys.argv[1:])
    try:
        from quasar_tui.cli import main as cli_main

        return cli_main()
    except KeyboardInterrupt:  # during the imports: no traceback for a Ctrl-C
        return 130
    finally:
        opening.drop()
