"""The Textual console. Nothing outside this package imports Textual.

`run(args)` is what `quasar` with no command calls; Textual reads its frame-rate and animation
settings when first imported, so they are set here before anything loads it.
"""

from __future__ import annotations

import argparse
import os


def run(args: argparse.Namespace) -> int:
    """Open the console; returns the process exit status."""
    fps = getattr(args, "fps", None)
    if fps is not None and fps >= 1:
        os.environ["TEXTUAL_FPS"] = str(fps)
    if getattr(args, "no_animation", False):
        os.environ["TEXTUAL_ANIMATIONS"] = "none"
    from quasar_tui.tui.launch import main

    return main(args)
