"""Errors whose message is meant for the user: one line saying what is wrong and what to do.

The CLI prints these without a traceback and exits 1; the console shows them inline.
"""

from __future__ import annotations


class QuasarError(Exception):
    """A failed operation the user can act on."""


class NotFoundError(QuasarError):
    """A provider, asset, mapping or subscription that does not exist."""


class ConflictError(QuasarError):
    """The change would break a uniqueness rule."""


class InvalidInputError(QuasarError, ValueError):
    """A value the user gave is not acceptable."""


class DatabaseUnavailableError(QuasarError):
    """The database cannot be reached or started."""


class UsageError(InvalidInputError):
    """The command line itself is wrong (exit status 2, like argparse's own errors)."""
