"""Cells and lines from providers and files, made safe to draw: control characters escaped
(they would reach the terminal raw and could retitle or clear it) and `[` not taken as markup.
"""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text

from quasar_tui.core.text import printable


def safe_text(value: Text) -> Text:
    """`value` itself when it holds no control character, else its escaped plain text."""
    plain = printable(value.plain)
    if plain == value.plain:
        return value
    return Text(plain, style=value.style, justify=value.justify, no_wrap=value.no_wrap)


def safe_cell(value: object) -> object:
    """A DataTable cell: strings are escaped (Textual reads them as markup), Text checked."""
    if isinstance(value, Text):
        return safe_text(value)
    if isinstance(value, str):
        return escape(printable(value))
    return value
