"""Benchmarks: each `python -m bench.NAME` prints one JSON object of figures as its last line."""
