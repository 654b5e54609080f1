import sys

from quasar_tui.cli import main

sys.exit(main())
