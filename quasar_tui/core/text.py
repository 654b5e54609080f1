"""Showing text that came from elsewhere (a provider, a user file, an exception) on a terminal.

A provider's asset name can hold escape sequences that retitle, clear or rewrite the terminal of
whoever lists it. Every such string goes through `printable` at the output edge.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the bidirectional overrides that reorder what is shown.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """`text` as a string with every control character shown as an escape (`\\x1b`)."""
    return _UNSAFE.sub(_escape, str(text))
