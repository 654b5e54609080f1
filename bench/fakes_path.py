"""The tests' loopback fake exchanges (tests/fakes), importable from benchmarks.

Benchmarks drive the same fakes the tests do rather than keeping copies of them; the fakes live
beside the tests, so their folder is put on the import path here.
"""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent.parent / "tests")
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from fakes import binance, kraken_rest, kraken_ws, launcher  # noqa: E402  (path set above)

__all__ = ["binance", "kraken_rest", "kraken_ws", "launcher"]
