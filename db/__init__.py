"""Numbered SQL migrations, installed as the package `quasar_tui.db`; see store/migrations.py."""
