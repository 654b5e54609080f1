import builtins
import os
import sys

# Leave traces a leaky validator would carry into its caller, and a fake "ok" report on both
# output streams.
os.environ["QUASAR_HOSTILE_WAS_HERE"] = "1"
builtins.quasar_hostile = True
print('{"ok": true, "name": "fake", "kind": "live", "class_name": "X", "capabilities": {}}')
print('{"ok": true}', file=sys.stderr)
raise ValueError("boom")
