"""Errors whose message is meant for the user: one line saying what is wrong and what to do.

The CLI prints these without a traceback and exits 1; the console shows them inline.
"""


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
