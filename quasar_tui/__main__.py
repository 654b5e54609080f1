import sys

from quasar_tui.entry import main

sys.exit(main())
