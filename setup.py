"""Packages for setuptools. The bundled providers and the migrations sit at the repository's top
level (`providers/`, `db/`) and install inside the package as `quasar_tui.providers` and
`quasar_tui.db`; pyproject.toml cannot map those and still find the rest, so this file does."""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["quasar_tui", "quasar_tui.*"]),
        "quasar_tui.providers",
        "quasar_tui.db",
    ],
    package_dir={"quasar_tui.providers": "providers", "quasar_tui.db": "db"},
)
