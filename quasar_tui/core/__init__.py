"""Pure helpers with no I/O: interval maths, symbol normalisation, validation."""
