"""Layers import downwards only: the daemon and everything under it load no Textual, so a
headless server never pays for (or depends on) the console."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys

HEADLESS_PACKAGES = ("core", "sdk", "store", "registry", "sandbox", "engine", "providers", "serve")
HEADLESS_MODULES = ("quasar_tui.daemon", "quasar_tui.cli")
_LIST_MODULES = (
    "import importlib, json, sys\n"
    "for name in sys.argv[1:]:\n"
    "    importlib.import_module(name)\n"
    "print(json.dumps(sorted(sys.modules)))\n"
)


def headless_modules() -> list[str]:
    names = list(HEADLESS_MODULES)
    for package in HEADLESS_PACKAGES:
        prefix = f"quasar_tui.{package}"
        names.append(prefix)
        path = importlib.import_module(prefix).__path__
        names.extend(info.name for info in pkgutil.walk_packages(path, prefix=prefix + "."))
    return names


def loaded_after_importing(modules: list[str]) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", _LIST_MODULES, *modules],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


def test_engine_registry_store_daemon_and_cli_import_no_textual() -> None:
    modules = headless_modules()
    assert "quasar_tui.engine.engine" in modules and "quasar_tui.registry.providers" in modules
    loaded = loaded_after_importing(modules)
    # Only Textual here: rich may be loaded by httpx when click is installed (import-linter
    # brings both into the test environment); Quasar's own imports of rich are forbidden by the
    # import contract in pyproject.toml.
    console = sorted(m for m in loaded if m == "textual" or m.startswith("textual."))
    assert console == []
    assert "quasar_tui.tui" not in loaded


def test_the_sandbox_sits_below_the_engine_and_beside_no_store() -> None:
    """Provider hosts never hold a database connection: nothing of store or engine is loaded
    with the sandbox (a host importing them would carry the DSN code into provider reach)."""
    prefix = "quasar_tui.sandbox"
    path = importlib.import_module(prefix).__path__
    modules = [prefix, *(i.name for i in pkgutil.walk_packages(path, prefix=prefix + "."))]
    assert "quasar_tui.sandbox.host" in modules
    loaded = loaded_after_importing(modules)
    above = sorted(
        m for m in loaded if m.startswith(("quasar_tui.store", "quasar_tui.engine", "textual"))
    )
    assert above == []
