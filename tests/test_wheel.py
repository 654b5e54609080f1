"""The wheel a plain `pip install .` builds carries the bundled providers and the migrations,
which live at the repository's top level (`providers/`, `db/`), and Quasar runs from it."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)  # type: ignore[call-overload]


async def test_the_installed_wheel_registers_bundled_providers_and_migrates(
    tmp_path: Path, test_dsn: str
) -> None:
    # As a plain `pip install .` builds it: isolated, with the build backend pyproject names.
    dist = tmp_path / "dist"
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT)
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("quasar_tui-*.whl")

    # A fresh environment that sees this one's dependencies but not its editable Quasar.
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    (Path(site.stdout.strip()) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel
    )
    assert installed.returncode == 0, installed.stderr

    # An empty database, so the migrations that run are the wheel's.
    conn = await asyncpg.connect(test_dsn)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()

    env = {**os.environ, "QUASAR_DSN": test_dsn, "QUASAR_DATA_DIR": str(tmp_path / "data")}
    where = _run(python, "-c", "import quasar_tui; print(quasar_tui.__file__)", cwd=tmp_path)
    assert where.stdout.startswith(str(env_dir)), where.stdout + where.stderr

    quasar = env_dir / "bin" / "quasar"
    listed = _run(quasar, "provider", "list", "--json", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    for name in ("EODHD", "KRAKEN", "POLYGON", "SIMULATED"):
        assert f'"{name}"' in listed.stdout

    info = _run(quasar, "db", "info", env=env, cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert "030 gap_audits" in info.stdout, info.stdout
