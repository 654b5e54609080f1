import nope  # noqa: F401
