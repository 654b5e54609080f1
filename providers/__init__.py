"""Bundled provider sources. The registry stores and loads them as source text, not by import."""
