"""Modal forms of the registry modes: each validates inline and writes nothing until valid."""
